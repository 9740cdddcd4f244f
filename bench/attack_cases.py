"""How long each hostile source holds a worker, and how much memory it takes: one attempt per case.

    PYTHONPATH=$PWD python bench/attack_cases.py [--cap 60] [--only NAME] [--interval 1]

Serves the attack corpus of tests/attack_corpus.py from a hostile server on 127.0.0.1 and
runs each case through `workers.pipeline.process_image` (the worker's own code path) in a
fresh child process, on a throwaway SQLite database, with the settings the environment
gives (defaults: connect 5 s, read 15 s) and private URLs allowed. The analyzer finds no
faces and loads no model, so the figures are what the source costs on top of a worker's
resident models. A case still running after `--cap` seconds is killed and shown as `> cap`.
Prints one line per case: the code the attempt ended with, its wall time, and the child's
peak RSS (VmHWM) beside its RSS before the attempt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.attack_corpus import CASES, hostile_server, upload_bytes  # noqa: E402


class NoFaces:
    """Finds nothing and loads no model (models.analyzer would import TensorFlow)."""

    def analyze(self, rgb):
        return []

    def analyze_image(self, rgb):
        return SimpleNamespace(faces=[], faces_beyond_cap=0, min_face_px=0, scan_capped=False)


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process; unlike ru_maxrss, VmHWM starts afresh at exec."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def one_attempt(url: str, upload: bytes | None) -> dict:
    """Child process: one image row, one `process_image`, the outcome and the peak memory."""
    from core.settings import load_settings
    from core.vocabulary import QUEUED
    from db import UPLOAD, Batch, Database, Image, ImageFile
    from db.migrate import upgrade
    from workers.pipeline import WorkerContext, process_image

    folder = Path(tempfile.mkdtemp())
    database_url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(database_url)
    settings = load_settings().with_changes(
        data_dir=folder, database_url=database_url, allow_private_urls=True, max_attempts=1
    )
    database = Database(database_url)
    with database.session() as session:
        image = Image(batch=Batch(total=1), url=url, platform="other", status=QUEUED)
        session.add(image)
        session.flush()
        if upload is not None:
            session.add(ImageFile(image_id=image.id, kind=UPLOAD, content_type="image/jpeg", data=upload))
        image_id = image.id
    del upload
    context = WorkerContext(settings, database, analyzer_factory=lambda _settings: NoFaces())
    before = status_mb("VmRSS")
    started = time.monotonic()
    outcome = process_image(image_id, context)
    seconds = time.monotonic() - started
    with database.session() as session:
        stored = session.get(Image, image_id)
        code = stored.error_code or stored.status
    return {
        "outcome": outcome.status,
        "code": code,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(status_mb("VmHWM")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before a case is killed")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between trickled bytes")
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    parser.add_argument("--skip", default=None, help="leave out the cases whose name contains this")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--upload-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        upload = Path(args.upload_file).read_bytes() if args.upload_file else None
        print(json.dumps(one_attempt(args.child, upload)))
        return

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"{'case':28} {'expected':18} {'ended as':26} {'time':>9} {'peak RSS':>9} {'RSS before':>10}")
    with (
        hostile_server(trickle_interval=args.interval, trickle_for=args.cap + 30) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for case in CASES:
            if (args.only and args.only not in case.name) or (args.skip and args.skip in case.name):
                continue
            command = [sys.executable, __file__]
            if case.path.startswith("upload:"):
                upload_file = Path(tmp) / "upload"
                upload_file.write_bytes(upload_bytes(case))
                command += ["--child", case.path, "--upload-file", str(upload_file)]
            else:
                command += ["--child", server.url(case.path)]
            started = time.monotonic()
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=args.cap, env=env)
                lines = result.stdout.strip().splitlines()
                row = json.loads(lines[-1]) if result.returncode == 0 and lines else None
            except subprocess.TimeoutExpired:
                row = None
                print(f"{case.name:28} {case.code:18} {'(still running)':26} {'> ' + str(int(args.cap)) + ' s':>9}")
                continue
            if row is None:
                tail = result.stderr.strip().splitlines()[-1:] or ["?"]
                print(f"{case.name:28} {case.code:18} crashed after {time.monotonic() - started:.1f} s: {tail[0]}")
                continue
            ended = row["code"] if row["outcome"] != "retry" else f"{row['code']} (retry)"
            print(
                f"{case.name:28} {case.code:18} {ended:26} {row['seconds']:>7.1f} s "
                f"{row['peak_rss_mb']:>6} MB {row['rss_before_mb']:>7} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
