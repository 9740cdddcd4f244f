"""Worker throughput with the real queue (Postgres + Redis) for 1 and 2 worker processes, and their memory.

    python bench/worker_throughput.py [--quick] [--repeats N] [--copies 12]

Starts everything it measures and stops it at the end, even on error: a file server for
the 11 example photos on 127.0.0.1, the API under gunicorn (`socialfer serve --no-worker`),
and per configuration a `socialfer worker`. Each worker first gets a warm-up batch (so
TensorFlow has loaded and traced before the clock starts); then each timed run submits
the photos `--copies` times under distinct URLs as one batch and waits until every image
is terminal. images/s is counted from the first image started to the last one finished
(the `started_at`/`finished_at` the API returns), so polling does not blur it; the rate
from the POST is shown too. VmRSS of every process that runs tasks (the solo worker
itself, or the prefork pool children) is sampled every 0.5 s from /proc.

Uses its own database and Redis db (below), and refuses to start while anything else is
connected to them: two runs at once would take each other's tasks.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import redis
import requests
from batch_latency import EXAMPLES
from generate_faces import ensure_database
from load_run import submit_batches
from local_server import serve_folder
from run_all import free_port, wait_for_api
from sqlalchemy import create_engine, text

from db.migrate import upgrade

DATABASE = "postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_workers"
REDIS = "redis://127.0.0.1:6379/10"
RSS_GOAL_MB = 1536  # 1.5 GB per worker process
MB = 1024 * 1024
SAMPLE_SECONDS = 0.5
READY_TIMEOUT = 300.0  # model loading on 2 busy cores
STOP_TIMEOUT = 30.0
NOISE = 0.05  # a smaller gain between configurations is not a result on these machines


@dataclass(frozen=True)
class Configuration:
    label: str
    processes: int  # `socialfer worker -c`
    tf_threads: int = 0  # SOCIALFER_TF_THREADS; 0: the worker's rule, cpus // processes

    @property
    def threads_each(self) -> int:
        return self.tf_threads or max(1, (os.cpu_count() or 1) // self.processes)


CONFIGURATIONS = (
    Configuration("a: `worker -c 1` (solo)", 1),
    Configuration("b: `worker -c 2` (prefork)", 2),
    Configuration("c: `worker -c 2`, SOCIALFER_TF_THREADS=2 (oversubscribed)", 2, 2),
)


@dataclass
class Result:
    """What one configuration measured."""

    config: Configuration
    ready_s: float = 0.0  # worker start -> its "ready" log line
    warm_up_s: float = 0.0  # the warm-up batch, POST -> terminal
    rates: list[float] = field(default_factory=list)  # images/s, first started -> last finished
    post_rates: list[float] = field(default_factory=list)  # images/s, POST -> all terminal seen
    done: int = 0
    failed: int = 0
    peak_rss_mb: dict[int, float] = field(default_factory=dict)  # task-running pid -> peak VmRSS


def environment(tf_threads: int = 0) -> dict[str, str]:
    """The bench database and broker for every process started here."""
    env = {**os.environ, "SOCIALFER_DATABASE_URL": DATABASE, "SOCIALFER_BROKER_URL": REDIS}
    env["SOCIALFER_ALLOW_PRIVATE_URLS"] = "1"  # the photos come from 127.0.0.1
    env.pop("SOCIALFER_TF_THREADS", None)
    if tf_threads:
        env["SOCIALFER_TF_THREADS"] = str(tf_threads)
    return env


def refuse_if_busy() -> None:
    """Stop here if another process uses the bench database or Redis db: its workers would take our tasks."""
    engine = create_engine(DATABASE)
    with engine.connect() as connection:
        others = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalar()
    engine.dispose()
    client = redis.Redis.from_url(REDIS)
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    redis_others = sum(c.get("db") == db for c in client.client_list()) - 1  # less this very connection
    client.close()
    if others or redis_others:
        sys.exit(
            f"{others} other connection(s) to {DATABASE} and {redis_others} to {REDIS}: "
            "is another benchmark or worker using them? Stop it first."
        )


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all its threads'), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    todo, found = children(pid), []
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Peak VmRSS of the processes that run tasks: the worker itself (solo) or its pool children (prefork)."""

    def __init__(self, worker_pid: int, pool: bool):
        super().__init__(daemon=True)
        self.worker_pid, self.pool = worker_pid, pool
        self.peaks: dict[int, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            for pid in children(self.worker_pid) if self.pool else [self.worker_pid]:
                rss = rss_mb(pid)
                if rss is not None:
                    self.peaks[pid] = max(rss, self.peaks.get(pid, 0.0))


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process with its output in `log`; terminated (then killed, with its descendants) on the way out."""
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (a warm shutdown for Celery, which stops its pool), then SIGKILL for whatever is left."""
    family = {pid: start_time(pid) for pid in descendants(process.pid)}
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    for pid, began in family.items():
        if began is not None and start_time(pid) == began:  # still ours, not a reused pid
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): tells our process from a later one given the same pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def socialfer(*args: str) -> list[str]:
    return [sys.executable, "-m", "socialfer", *args]


def wait_for_line(log: Path, process: subprocess.Popen, needle: str, seconds: float) -> None:
    """Until `needle` appears in the log; fails early if the process dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{log.name} exited ({process.returncode}) before {needle!r}:\n{tail(log)}")
        time.sleep(0.2)
    raise TimeoutError(f"no {needle!r} in {log.name} after {seconds:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    noise = ("W0000", "I0000", "WARNING: All log", "rebuild TensorFlow")
    kept = [line for line in log.read_text(errors="replace").splitlines() if not line.startswith(noise)]
    return "\n".join(kept[-lines:])


def run_batch(api: str, urls: list[str], timeout: float) -> tuple[float, float, list[dict]]:
    """Submit `urls` as one batch and wait until every image is terminal.

    Returns the images/s from the first image started to the last finished, the images/s
    from the POST, and the images.
    """
    posted = time.monotonic()
    (batch_id,), _ = submit_batches(api, urls, len(urls))
    deadline = posted + timeout
    while requests.get(f"{api}/api/v1/batches/{batch_id}", timeout=30).json()["status"] != "done":
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} not finished after {timeout:.0f} s")
        time.sleep(0.5)
    from_post = len(urls) / (time.monotonic() - posted)
    images = batch_images(api, batch_id)
    first = min(datetime.fromisoformat(i["started_at"]) for i in images if i["started_at"])
    last = max(datetime.fromisoformat(i["finished_at"]) for i in images)
    return len(images) / (last - first).total_seconds(), from_post, images


def batch_images(api: str, batch_id: int) -> list[dict]:
    """Every image of the batch, page by page (the API gives at most 500 a page)."""
    images: list[dict] = []
    for page in range(1, 1000):
        answer = requests.get(
            f"{api}/api/v1/batches/{batch_id}/images", params={"page": page, "per_page": 500}, timeout=30
        ).json()
        images += answer["items"]
        if page >= answer["pages"]:
            break
    return images


def measure(config: Configuration, api: str, photos: list[str], copies: int, repeats: int, logs: Path) -> Result:
    """Start the configuration's worker on an empty queue, warm it up, then time `repeats` batches."""
    redis.Redis.from_url(REDIS).flushdb()
    result = Result(config)
    log = logs / f"worker-{config.processes}-{config.tf_threads}.log"
    command = socialfer("worker", "-c", str(config.processes))
    began = time.monotonic()
    with started(command, environment(config.tf_threads), log) as worker:
        sampler = RssSampler(worker.pid, pool=config.processes > 1)
        sampler.start()
        try:
            wait_for_line(log, worker, " ready.", READY_TIMEOUT)
            result.ready_s = time.monotonic() - began
            # Two rounds per pool process, so each one most likely meets every photo size (MTCNN traces per size).
            warm_urls = [f"{p}?warm={k}" for k in range(2 * config.processes) for p in photos]
            warm_started = time.monotonic()
            run_batch(api, warm_urls, READY_TIMEOUT + 10 * len(warm_urls))
            result.warm_up_s = time.monotonic() - warm_started
            urls_per_run = len(photos) * copies
            for run in range(repeats):
                urls = [
                    f"{p}?run={config.processes}-{config.tf_threads}-{run}&n={k}" for k in range(copies) for p in photos
                ]
                rate, from_post, images = run_batch(api, urls, 60 + 10 * urls_per_run)
                result.rates.append(rate)
                result.post_rates.append(from_post)
                result.done += sum(i["status"] == "done" for i in images)
                result.failed += sum(i["status"] == "failed" for i in images)
                print(
                    f"  {config.label}, run {run + 1}: {rate:.2f} images/s ({from_post:.2f} from the POST)", flush=True
                )
        finally:
            sampler.stopped.set()
            sampler.join(timeout=5)
    result.peak_rss_mb = dict(sampler.peaks)
    if config.processes > 1 and len(result.peak_rss_mb) > config.processes:
        print(f"  note: {len(result.peak_rss_mb)} pool processes seen for {config.processes} (some were replaced)")
    return result


def report(results: list[Result], repeats: int) -> None:
    """The table, the memory verdict and the recommended concurrency."""
    print(f"\n{os.cpu_count()} cpus, median of {repeats} run(s) per configuration; load average now {load()}\n")
    print(
        "| configuration | worker processes | TF threads each | images/s | images/s from POST | runs | "
        f"peak RSS per process (MB) | RSS ≤ {RSS_GOAL_MB} MB | done/failed | warm-up (ready + first batch) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        peaks = sorted(r.peak_rss_mb.values(), reverse=True)
        verdict = "PASS" if peaks and max(peaks) <= RSS_GOAL_MB else "FAIL"
        print(
            f"| {r.config.label} | {r.config.processes} | {r.config.threads_each} | "
            f"{statistics.median(r.rates):.2f} | {statistics.median(r.post_rates):.2f} | "
            f"{', '.join(f'{x:.2f}' for x in r.rates)} | {' / '.join(f'{p:.0f}' for p in peaks)} | {verdict} | "
            f"{r.done}/{r.failed} | {r.ready_s:.0f} s + {r.warm_up_s:.0f} s |"
        )
    worst = max(max(r.peak_rss_mb.values(), default=float("inf")) for r in results)
    print(
        f"\npeak RSS per worker process {worst:.0f} MB (goal ≤ {RSS_GOAL_MB} MB): "
        f"{'PASS' if worst <= RSS_GOAL_MB else 'FAIL'}"
    )
    defaults = [r for r in results if not r.config.tf_threads]  # what `--concurrency N` gives unaided
    if len(defaults) >= 2:
        best = max(defaults, key=lambda r: statistics.median(r.rates))
        other = min(defaults, key=lambda r: statistics.median(r.rates))
        gain = statistics.median(best.rates) / statistics.median(other.rates) - 1
        tie = "; within the noise of a shared machine, so treat it as a tie" if gain < NOISE else ""
        print(
            f"recommendation: default concurrency {best.config.processes} on this {os.cpu_count()}-cpu machine "
            f"({statistics.median(best.rates):.2f} vs {statistics.median(other.rates):.2f} images/s, "
            f"{gain * 100:+.0f} %{tie})"
        )


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 copies of the photos, one run per configuration")
    parser.add_argument("--copies", type=int, default=None, help="times the 11 photos are submitted per run (12)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per configuration (3; quick 1)")
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    args = parser.parse_args()
    copies = args.copies or (3 if args.quick else 12)
    repeats = args.repeats or (1 if args.quick else 3)

    ensure_database(DATABASE)
    upgrade(DATABASE)
    refuse_if_busy()
    print(f"load average before: {load()} (the cpus are shared with whatever else runs)", flush=True)
    server, base = serve_folder(args.examples)
    photos = [f"{base}/{p.relative_to(args.examples)}" for p in sorted(args.examples.glob("*/*.jpeg"))]
    results = []
    with TemporaryDirectory(prefix="worker-throughput-") as folder:
        logs = Path(folder)
        try:
            port = free_port()
            api = f"http://127.0.0.1:{port}"
            with started(socialfer("serve", "--no-worker", "--port", str(port)), environment(), logs / "api.log"):
                wait_for_api(api)
                for config in CONFIGURATIONS:
                    print(f"{config.label}: {len(photos)} photos x {copies} per run, {repeats} run(s)", flush=True)
                    results.append(measure(config, api, photos, copies, repeats, logs))
        finally:
            server.shutdown()
    report(results, repeats)


if __name__ == "__main__":
    main()
