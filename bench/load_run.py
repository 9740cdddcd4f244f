"""Load run: many URLs through the API and the workers, measured from outside.

Serves one small face photo on 127.0.0.1 under distinct URLs (`/face.jpg?n=...`),
submits them in batches, and prints how fast the API accepted them and how fast the
workers finished them. Start the API and the workers yourself (see BENCHMARKS.md),
with SOCIALFER_ALLOW_PRIVATE_URLS=1.

    python bench/load_run.py --api http://127.0.0.1:8112 --urls 5000 --batch 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import cv2
import requests
from local_server import serve_folder

DEFAULT_FACE = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "social_examples" / "twitter" / "5.jpeg"
)


def submit_batches(api: str, urls: list[str], batch: int) -> tuple[list[int], list[float]]:
    """POST `urls` to the API in batches of `batch`, one after another; the batch ids and each POST's seconds."""
    batch_ids, seconds = [], []
    for first in range(0, len(urls), batch):
        t0 = time.monotonic()
        response = requests.post(f"{api}/api/v1/batches", json={"urls": urls[first : first + batch]}, timeout=120)
        seconds.append(time.monotonic() - t0)
        response.raise_for_status()
        batch_ids.append(response.json()["id"])
    return batch_ids, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--urls", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--face", type=Path, default=DEFAULT_FACE)
    parser.add_argument("--side", type=int, default=160, help="resize the photo to this many pixels square")
    args = parser.parse_args()

    with TemporaryDirectory() as folder:
        face = cv2.resize(cv2.imread(str(args.face)), (args.side, args.side), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(Path(folder) / "face.jpg"), face)
        server, root = serve_folder(folder)
        base = f"{root}/face.jpg"

        started = time.monotonic()
        batch_ids, post_times = submit_batches(args.api, [f"{base}?n={n}" for n in range(args.urls)], args.batch)
        post_seconds = sum(post_times)
        print(
            f"accepted {args.urls} URLs in {len(batch_ids)} batches: {post_seconds:.2f} s in POSTs "
            f"= {args.urls / post_seconds:.0f} URLs/s"
        )

        done = failed = faces = 0
        while True:
            states = [requests.get(f"{args.api}/api/v1/batches/{b}", timeout=30).json() for b in batch_ids]
            done, failed = sum(s["done"] for s in states), sum(s["failed"] for s in states)
            faces = sum(s["faces"] for s in states)
            if done + failed >= args.urls:
                break
            time.sleep(2)
        elapsed = time.monotonic() - started
        print(
            f"finished: {done} done, {failed} failed, {faces} faces in {elapsed:.1f} s "
            f"= {args.urls / elapsed:.2f} images/s end to end"
        )
        server.shutdown()


if __name__ == "__main__":
    main()
