"""CPU time per request of the API's read routes, in-process: what each answer costs the server, whatever else
the machine is doing.

bench/api_latency.py measures latency from outside, which on a shared 2-core machine is mostly
the other jobs' load. This runs the app in this process (Flask test client, the real database)
and times each request's CPU (`time.process_time`: the API's Python work) and wall clock, one at
a time, for the same variants (filter values from the API), including /stats and /compare with
and without their cache of corrected shares (emptied before each "uncached" request). The
database's own time is in the wall figure.

    SOCIALFER_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_1m python bench/request_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from api_latency import iso

from analysis.report import cached_corrections
from api import create_app
from core.settings import load_settings


def measure(get: Callable[[str], object], paths: list[str], cached: bool) -> tuple[float, float]:
    """Median CPU and wall milliseconds over `paths` (one request each); `cached` False empties the
    cache of corrected shares before each, so every answer computes them."""
    cpu, wall = [], []
    for path in paths:
        if not cached:
            cached_corrections.cache_clear()
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        get(path)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started_wall) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=61, help="per variant (one more warms up)")
    args = parser.parse_args()
    app = create_app(load_settings())
    client = app.test_client()

    def get(path: str) -> object:
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:200])
        return response.get_json()

    newest = get("/api/v1/faces?limit=1")["items"][0]  # type: ignore[index]
    newest_at = datetime.fromisoformat(newest["analyzed_at"].replace("Z", "+00:00"))
    batches = sorted(get("/api/v1/batches?limit=100")["items"], key=lambda b: -b["faces"])  # type: ignore[index]
    month, fortnight = iso(newest_at - timedelta(days=30)), iso(newest_at - timedelta(days=14))
    repeat = [f"/api/v1/stats?since={iso(newest_at - timedelta(days=7))}"] * args.requests
    variants = {
        "timeline (for reference)": ["/api/v1/timeline"] * args.requests,
        "faces first page (for reference)": ["/api/v1/faces"] * args.requests,
        "stats, cached": ["/api/v1/stats"] * args.requests,
        "stats since 7 days, cached": repeat,
        "stats since 7 days, uncached": repeat,
        "stats batch, cached": [f"/api/v1/stats?batch_id={batches[0]['id']}"] * args.requests,
        "compare platforms, cached": ["/api/v1/compare?a.platform=instagram&b.platform=twitter"] * args.requests,
        "compare windows, cached": [f"/api/v1/compare?a.since={month}&a.until={fortnight}&b.since={fortnight}"]
        * args.requests,
        "compare platforms, uncached": ["/api/v1/compare?a.platform=instagram&b.platform=twitter"] * args.requests,
    }
    for paths in variants.values():  # warm: the process's first answers build the matrix draws
        get(paths[-1])
    print(f"{'variant':<34} {'CPU ms':>8} {'wall ms':>8}")
    for name, paths in variants.items():
        cpu, wall = measure(get, paths[:-1], cached="uncached" not in name)  # the last one warmed up
        print(f"{name:<34} {cpu:>8.1f} {wall:>8.1f}", flush=True)
    print(f"(medians of {args.requests - 1} sequential requests each)")
    app.extensions["db"].dispose()


if __name__ == "__main__":
    main()
