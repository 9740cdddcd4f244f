"""How long the 11 example photos take through a running socialfer, end to end.

Serves ../shared/data/social_examples on 127.0.0.1, submits all 11 URLs as one batch
to the API, waits until every image is terminal, and prints wall time and the
per-image fetch/analyse times the workers recorded. The server must run with
SOCIALFER_ALLOW_PRIVATE_URLS=1 (the photos come from 127.0.0.1).

    SOCIALFER_ALLOW_PRIVATE_URLS=1 socialfer serve --port 8000 &
    python bench/batch_latency.py --api http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import requests
from local_server import serve_folder

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "social_examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    args = parser.parse_args()

    server, base = serve_folder(args.examples)
    urls = [f"{base}/{p.relative_to(args.examples)}" for p in sorted(args.examples.glob("*/*.jpeg"))]

    started = time.monotonic()
    batch = requests.post(f"{args.api}/api/v1/batches", json={"urls": urls}, timeout=60)
    batch.raise_for_status()
    batch_id = batch.json()["id"]
    while True:
        state = requests.get(f"{args.api}/api/v1/batches/{batch_id}", timeout=30).json()
        if state["status"] == "done":
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    images = requests.get(f"{args.api}/api/v1/batches/{batch_id}/images", params={"per_page": 100}, timeout=30).json()[
        "items"
    ]
    fetch = [i["timings"]["fetch_ms"] for i in images if i["timings"]["fetch_ms"] is not None]
    analyze = [i["timings"]["analyze_ms"] for i in images if i["timings"]["analyze_ms"] is not None]
    print(
        f"batch {batch_id}: {len(urls)} images, {state['done']} done, {state['failed']} failed, {state['faces']} faces"
    )
    print(f"wall time submit -> all terminal: {elapsed:.1f} s ({len(urls) / elapsed:.2f} images/s)")
    if analyze:
        print(
            f"per image: fetch median {statistics.median(fetch):.0f} ms, "
            f"analyse median {statistics.median(analyze):.0f} ms (max {max(analyze):.0f} ms)"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
