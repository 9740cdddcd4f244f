"""Soak: many URLs through two workers while workers, Redis and Postgres fail under them.

    python bench/soak.py [--urls 20000] [--kill-every 60] [--workers 2]

Starts everything itself and stops it at the end: a throwaway Postgres cluster and a Redis of
its own (tests/test_faults.py's helpers), an image server on 127.0.0.1 with 200 distinct
small face JPEGs (each URL is distinct by its query), and `--workers` solo workers
(`socialfer worker -c 1`, JSON logs). The URLs go in as batches of 1000. During the run:
every `--kill-every` seconds one worker (in turn) is killed with SIGKILL and started again;
at a third of the images Redis is restarted empty (every queued message is lost); at two
thirds Postgres is restarted. The sweeper is what brings lost work back, so its clocks
are shortened (processing 30 s, queued 20 s, every 5 s).

At the end it checks that every image is `done` or `failed`, that no image was finished
twice (at most one "succeeded ... done/failed" log line per image id over every worker log,
killed ones included), and that each image holds exactly `face_count` faces; and prints the
throughput and, per fault, the time until the finishing rate was back to half its rate
before the fault. Not part of the test suite (minutes to hours); figures go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from core.vocabulary import DONE, FAILED  # noqa: E402
from db import Database, Face, Image  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from tests.support import image_server  # noqa: E402
from tests.test_faults import own_redis, pg_ctl, throwaway_postgres  # noqa: E402

SHARED = Path(os.environ.get("SOCIALFER_SHARED_DATA", ROOT.parent / "shared" / "data"))
BATCH = 1000
RECOVERY = {
    "SOCIALFER_ALLOW_PRIVATE_URLS": "1",
    "SOCIALFER_PROCESSING_TIMEOUT": "30",
    "SOCIALFER_QUEUED_TIMEOUT": "20",
    "SOCIALFER_SWEEP_INTERVAL": "5",
    "SOCIALFER_LOG_FORMAT": "json",
    "SOCIALFER_WORKER_METRICS_PORT": "0",
    "SOCIALFER_API_KEYS": "",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Worker:
    """One `socialfer worker -c 1`; every start writes a new log file, so a killed one's lines stay."""

    index: int
    env: dict[str, str]
    logs: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"worker{self.index}-{self.starts}.log", "wb")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "socialfer", "worker", "--concurrency", "1"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Timeline:
    """Finished images sampled once a second, and when each fault happened."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    faults: list[tuple[str, float]] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float | None:
        inside = [(t, n) for t, n in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def recovery(self, at: float, window: float = 10.0) -> float | None:
        """Seconds from the fault until a `window` finished at half the rate of the 30 s before it."""
        before = self.rate(at - 30, at)
        if not before:
            return None
        for t, _ in self.samples:
            if t > at and (self.rate(t, t + window) or 0) >= before / 2:
                return t - at
        return None


def finished(database: Database) -> int | None:
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(Image).where(Image.status.in_((DONE, FAILED))))
    except Exception:  # Postgres is the thing being restarted
        return None


def submit(database_url: str, broker_url: str, urls: list[str]) -> None:
    import dataclasses

    from api import create_app
    from core.settings import load_settings

    settings = dataclasses.replace(load_settings(), database_url=database_url, broker_url=broker_url, api_keys=())
    app = create_app(settings)
    client = app.test_client()
    for start in range(0, len(urls), BATCH):
        response = client.post("/api/v1/batches", json={"urls": urls[start : start + BATCH]})
        assert response.status_code == 202, response.get_data(as_text=True)
    app.extensions["db"].dispose()


def terminal_lines_per_image(logs: Path) -> dict[int, int]:
    """How many times each image was reported finished (done or failed) across every worker log."""
    seen: dict[int, int] = {}
    for path in logs.glob("worker*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if "succeeded" in record.get("message", "") and record.get("outcome") in (DONE, FAILED):
                seen[record["image_id"]] = seen.get(record["image_id"], 0) + 1
    return seen


def check(database: Database, total: int, logs: Path) -> dict[str, int]:
    with database.session() as session:
        states = dict(session.execute(select(Image.status, func.count()).group_by(Image.status)).all())
        stored = dict(session.execute(select(Face.image_id, func.count()).group_by(Face.image_id)).all())
        images = session.execute(select(Image.id, Image.face_count)).all()
        attempts = dict(session.execute(select(Image.attempts, func.count()).group_by(Image.attempts)).all())
    reported = terminal_lines_per_image(logs)
    twice = sorted(image for image, n in reported.items() if n > 1)
    wrong_faces = [image for image, count in images if stored.get(image, 0) != (count or 0)]
    assert sum(states.values()) == total, states
    assert states.get(DONE, 0) + states.get(FAILED, 0) == total, f"not every image ended: {states}"
    assert not twice, f"finished twice: {twice[:10]}"
    assert not wrong_faces, f"images whose faces differ from face_count: {wrong_faces[:10]}"
    return {"done": states.get(DONE, 0), "failed": states.get(FAILED, 0), "faces": sum(stored.values()),
            "finish_lines": sum(reported.values()), "attempts": attempts}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--kill-every", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="give up after this many seconds")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="socialfer-soak-"))
    faces_dir, logs = scratch / "faces", scratch / "logs"
    faces_dir.mkdir()
    logs.mkdir()
    face = cv2.imread(str(SHARED / "social_examples" / "twitter" / "5.jpeg"))
    for i in range(200):
        variant = cv2.convertScaleAbs(face, alpha=1.0, beta=(i % 20) - 10)
        cv2.imwrite(str(faces_dir / f"{i}.jpg"), variant, [cv2.IMWRITE_JPEG_QUALITY, 60 + i % 35])

    with (
        throwaway_postgres() as (database_url, pg_data, pg_port),
        own_redis(scratch) as (broker_url, restart_redis),
        image_server(faces_dir) as images,
    ):
        upgrade(database_url)
        database = Database(database_url)
        env = {**os.environ, **RECOVERY, "SOCIALFER_DATABASE_URL": database_url, "SOCIALFER_BROKER_URL": broker_url}
        env["SOCIALFER_DATA_DIR"] = str(scratch)
        workers = [Worker(i, env, logs) for i in range(args.workers)]
        urls = [images.url(f"{i % 200}.jpg?n={i}") for i in range(args.urls)]
        timeline = Timeline()
        try:
            for worker in workers:
                worker.start()
            time.sleep(20)  # models loaded before the clock starts
            started = time.monotonic()
            threading.Thread(target=submit, args=(database_url, broker_url, urls), daemon=True).start()
            next_kill, victim = started + args.kill_every, 0
            redis_done = postgres_done = False
            last = 0
            while True:
                now = time.monotonic()
                count = finished(database)
                if count is not None:
                    last = count
                    timeline.samples.append((now - started, count))
                if last >= args.urls:
                    break
                if now - started > args.timeout:
                    raise SystemExit(f"gave up after {args.timeout:.0f}s at {last} of {args.urls}")
                if now >= next_kill:
                    workers[victim].kill()
                    timeline.faults.append((f"kill -9 worker {victim}", now - started))
                    workers[victim].start()
                    victim, next_kill = (victim + 1) % len(workers), now + args.kill_every
                if not redis_done and last >= args.urls / 3:
                    timeline.faults.append(("Redis restart (queue lost)", now - started))
                    restart_redis()
                    redis_done = True
                if not postgres_done and last >= 2 * args.urls / 3:
                    timeline.faults.append(("Postgres restart", now - started))
                    pg_ctl(pg_data, pg_port, "stop", "-m", "fast")
                    time.sleep(5)
                    pg_ctl(pg_data, pg_port, "start")
                    postgres_done = True
                time.sleep(1)
            elapsed = time.monotonic() - started
        finally:
            for worker in workers:
                worker.kill()
        result = check(database, args.urls, logs)
        database.dispose()

    print(f"soak: {args.urls} URLs, {args.workers} solo workers, kill -9 every {args.kill_every:.0f}s")
    print(f"  finished in {elapsed:.0f}s: {args.urls / elapsed:.1f} images/s overall")
    print(f"  {result['done']} done, {result['failed']} failed, {result['faces']} faces (each image's exactly once)")
    print(f"  attempts per image: {dict(sorted(result['attempts'].items()))}")
    print(f"  finish log lines: {result['finish_lines']} (none twice for an image)")
    for name, at in timeline.faults:
        recovery = timeline.recovery(at)
        shown = f"{recovery:.0f}s" if recovery is not None else "n/a (no rate before, or not back to half)"
        print(f"  {name} at {at:.0f}s: back to half the rate after {shown}")
    print(f"  logs: {logs}")


if __name__ == "__main__":
    main()
