"""Read latency of the dashboard's API on a large data set, and how fast it accepts batches, from outside.

Hits each /stats, /compare, /timeline and /faces variant (no filter, each filter, first and
deeper keyset pages) a fixed number of times, all variants shuffled together, from a few
concurrent clients under an overall time cap, and prints p50/p95/max per variant beside
its target: p95 under 50 ms for the aggregates, under 100 ms for a page of faces. /stats and
/compare answer with intervals and corrected shares, which the API keeps in a small cache
per exact data; the "uncached" variants start their window at another batch's creation time
on every request, so each one corrects new counts. Then
POSTs batches of 1000 URLs (bench/load_run.py's submit_batches) and prints URLs/s against 1000 URLs/s. Filter values
are read from the API itself (its newest face, a batch, the id range), so any filled
database works. Exits 1 if a target is missed.

    SOCIALFER_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_1m \\
    SOCIALFER_BROKER_URL=redis://127.0.0.1:6379/11 socialfer serve --no-worker --port 8120 --workers 2 &
    python bench/api_latency.py --api http://127.0.0.1:8120
    python bench/api_latency.py --api http://127.0.0.1:8120 --quick

The POSTs store queued images (and publish their tasks): point it at a database and broker
kept for benchmarks, or pass --no-post. The URLs (127.0.0.1:9) are refused by any worker
without a connection.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from load_run import submit_batches

STATS_TARGET_MS, FACES_TARGET_MS, POST_TARGET_URLS_S = 50.0, 100.0, 1000.0
UNREACHABLE_URL = "http://127.0.0.1:9/bench/{n}.jpg"  # a private address: a worker refuses it before connecting


@dataclass
class Measured:
    """One variant's latencies (ms) and failures."""

    name: str
    path: str
    target_ms: float | None  # None: shown for information, no verdict
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    varying: list[str] = field(default_factory=list)  # paths used in turn instead of `path` (uncached answers)

    def next_path(self) -> str:
        """`path`, or the next of `varying` (each request gets one never asked before)."""
        return self.varying.pop() if self.varying else self.path

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile: a value that was measured."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan

    @property
    def passed(self) -> bool:
        if self.target_ms is None:
            return not self.errors
        return bool(self.latencies) and not self.errors and self.percentile(95) < self.target_ms

    @property
    def verdict(self) -> str:
        text = ("PASS" if self.passed else "FAIL") if self.target_ms is not None else "info"
        return text + (f" ({len(self.errors)} errors, first: {self.errors[0]})" if self.errors else "")


def hit(api: str, results: list[Measured], per_variant: int, clients: int, max_seconds: float, warmup: int) -> None:
    """`per_variant` GETs of every variant, shuffled together, from `clients` threads (each with its own
    keep-alive session), stopping at the time cap.

    Interleaved, not one variant after another: a burst of load from elsewhere on the machine
    then lands on every variant alike instead of on whichever ran at that moment.
    """
    with requests.Session() as session:
        for measured in results:
            for _ in range(warmup):
                session.get(f"{api}{measured.next_path()}", timeout=30)
    work = [measured for measured in results for _ in range(per_variant)]
    random.Random(6).shuffle(work)
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if not work:
                        return
                    measured = work.pop()
                    path = measured.next_path()
                started = time.perf_counter()
                try:
                    response = session.get(f"{api}{path}", timeout=30)
                except requests.RequestException as exc:
                    with lock:
                        measured.errors.append(repr(exc))
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code == 200:
                        measured.latencies.append(elapsed)
                    else:
                        measured.errors.append(f"{response.status_code}: {response.text[:120]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def batch_times(api: str, count: int) -> list[str]:
    """The creation times of the newest `count` batches: windows starting at each hold different faces."""
    batches = requests.get(f"{api}/api/v1/batches", params={"limit": count}, timeout=30).json()["items"]
    return [batch["created_at"] for batch in batches]


def shifting(template: str, times: list[str]) -> list[str]:
    """One path per time in `since`: each window holds other faces, so no two answers are the same."""
    return [template.format(since=time) for time in times]


def variants(api: str, per_variant: int) -> list[Measured]:
    """The requests to time, with filter values read from the API."""
    newest_page = requests.get(f"{api}/api/v1/faces", params={"limit": 50}, timeout=30).json()
    if not newest_page["items"]:
        raise SystemExit("the API has no faces: fill its database with bench/generate_faces.py first")
    newest = newest_page["items"][0]
    newest_id, newest_at = newest["id"], datetime.fromisoformat(newest["analyzed_at"].replace("Z", "+00:00"))
    middle = max(1, newest_id // 2)  # a deep keyset page: half way down the ids
    batches = requests.get(f"{api}/api/v1/batches", params={"limit": 100}, timeout=30).json()["items"]
    by_faces = sorted(batches, key=lambda b: b["faces"], reverse=True)
    batch, other_batch = by_faces[0]["id"], by_faces[1]["id"]
    week = iso(newest_at - timedelta(days=7))
    since, until = iso(newest_at - timedelta(days=30, minutes=-17)), iso(newest_at - timedelta(days=16, minutes=-41))
    window = f"since={since}&until={until}"
    window_page = requests.get(f"{api}/api/v1/faces?{window}&limit=50", timeout=30).json()
    old = iso(newest_at - timedelta(days=60))
    month, fortnight = iso(newest_at - timedelta(days=30)), iso(newest_at - timedelta(days=14))
    stats = [
        ("stats", "/api/v1/stats"),
        ("stats platform", "/api/v1/stats?platform=instagram"),
        ("stats batch_id", f"/api/v1/stats?batch_id={batch}"),
        ("stats since (7 days)", f"/api/v1/stats?since={week}"),
        ("stats since+until (2 weeks)", f"/api/v1/stats?{window}"),
        ("stats platform+since+until", f"/api/v1/stats?platform=twitter&{window}"),
        ("compare platforms", "/api/v1/compare?a.platform=instagram&b.platform=twitter"),
        ("compare two windows", f"/api/v1/compare?a.since={month}&a.until={fortnight}&b.since={fortnight}"),
        ("compare platform, windows", f"/api/v1/compare?platform=facebook&a.until={fortnight}&b.since={fortnight}"),
        ("compare batches", f"/api/v1/compare?a.batch_id={batch}&b.batch_id={other_batch}"),
        ("timeline", "/api/v1/timeline"),
        ("timeline since+until", f"/api/v1/timeline?{window}"),
    ]
    faces = [
        ("faces first page", "/api/v1/faces"),
        ("faces page 2", f"/api/v1/faces?cursor={newest_page['next_cursor'] or middle}"),
        ("faces deep page", f"/api/v1/faces?cursor={middle}"),
        ("faces emotion deep", f"/api/v1/faces?emotion=disgust&cursor={middle}"),
        ("faces platform deep", f"/api/v1/faces?platform=facebook&cursor={middle}"),
        ("faces platform+emotion", "/api/v1/faces?platform=twitter&emotion=sad"),
        ("faces batch_id", f"/api/v1/faces?batch_id={batch}"),
        ("faces since+until", f"/api/v1/faces?{window}"),
        ("faces since+until page 2", f"/api/v1/faces?{window}&cursor={window_page['next_cursor'] or middle}"),
        ("faces until (60 days back)", f"/api/v1/faces?platform=instagram&until={old}"),
    ]
    times = batch_times(api, per_variant + 10)
    uncached = [
        Measured(
            "stats uncached (since moves)", "", STATS_TARGET_MS, varying=shifting("/api/v1/stats?since={since}", times)
        ),
        Measured(
            "compare uncached (since moves)",
            "",
            STATS_TARGET_MS,
            varying=shifting("/api/v1/compare?since={since}&a.platform=instagram&b.platform=twitter", times),
        ),
    ]
    return [
        *(Measured(name, path, STATS_TARGET_MS) for name, path in stats),
        *uncached,
        *(Measured(name, path, FACES_TARGET_MS) for name, path in faces),
        Measured("faces limit=500 (max page)", "/api/v1/faces?limit=500", None),  # 10x the default page
    ]


def measure_posts(api: str, batches: int, size: int) -> tuple[float, list[float]]:
    """URLs/s over `batches` POSTs of `size` URLs, and each POST's seconds."""
    stamp = int(time.time())
    urls = [UNREACHABLE_URL.format(n=f"{stamp}-{n}") for n in range(batches * size)]
    _, seconds = submit_batches(api, urls, size)
    return len(urls) / sum(seconds), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=200, help="per variant")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time cap for all the GETs")
    parser.add_argument("--post-batches", type=int, default=5, help="batches of --batch URLs to POST")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--no-post", action="store_true", help="do not POST (stores nothing)")
    parser.add_argument("--quick", action="store_true", help="30 requests per variant, 2 POSTs")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.max_seconds, args.post_batches = 30, 60.0, 2

    started = time.monotonic()
    results = variants(args.api, args.requests)
    print(
        f"{args.requests} requests per variant, all variants interleaved, {args.clients} clients, "
        f"at most {args.max_seconds:.0f} s"
    )
    gated = [measured for measured in results if measured.target_ms is not None]
    hit(args.api, gated, args.requests, args.clients, args.max_seconds, warmup=3)
    # The informational ones after, on their own: ten times the work of a page would slow the mix.
    hit(args.api, [m for m in results if m.target_ms is None], args.requests, args.clients, args.max_seconds, warmup=3)
    print(f"{'variant':<30} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'target':>12}  result")
    for measured in results:
        target = "-" if measured.target_ms is None else f"p95 < {measured.target_ms:.0f}"
        print(
            f"{measured.name:<30} {len(measured.latencies):>4} {measured.percentile(50):>8.1f} "
            f"{measured.percentile(95):>8.1f} {max(measured.latencies, default=math.nan):>8.1f} "
            f"{target:>12}  {measured.verdict}",
            flush=True,
        )
    passed = all(m.passed for m in results)
    if not args.no_post:
        rate, seconds = measure_posts(args.api, args.post_batches, args.batch)
        ok = rate >= POST_TARGET_URLS_S
        passed &= ok
        print(
            f"{'POST /batches x' + str(args.batch):<30} {len(seconds):>4} "
            f"{sorted(seconds)[len(seconds) // 2] * 1000:>8.1f} {'':>8} {max(seconds) * 1000:>8.1f} "
            f"{'>= 1000 URL/s':>12}  {'PASS' if ok else 'FAIL'} ({rate:.0f} URLs/s)"
        )
    print(f"{'all targets met' if passed else 'some targets missed'} in {time.monotonic() - started:.0f} s")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
