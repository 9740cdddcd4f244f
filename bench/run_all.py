"""Every benchmark in one command, each figure printed beside its peer or target.

    python bench/run_all.py            # the full set (about 25 minutes on 2 cores)
    python bench/run_all.py --quick    # the short form (about 6 minutes)
    python bench/run_all.py --only pipeline classifier

Runs the scripts in bench/ one after another in fresh processes (so no benchmark warms
another's caches), then repeats every PASS/FAIL line at the end. The data-path step fills
a Postgres database of its own (1M faces, or 20k with --quick) and serves it with gunicorn
on a free port. Nothing here is part of the test suite: tests assert behaviour, not speed.
Run it on a quiet machine: these machines are noisy, so the scripts report medians.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
BENCH_DATABASES = {  # the quick set gets its own database, so it never replaces the 1M one
    False: "postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_1m",
    True: "postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_quick",
}
BENCH_REDIS = "redis://127.0.0.1:6379/11"


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(BENCH / name), *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_api(api: str, seconds: float = 60) -> None:
    """Until the API answers /healthz."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{api}/healthz", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{api} did not answer /healthz in {seconds:.0f} s")


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run one script, echoing its output as it comes, and return its exit code and output."""
    print(f"$ {' '.join(Path(c).name if c == sys.executable else c for c in command)}", flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        if not line.startswith(("W0000", "I0000", "WARNING: All log")) and "rebuild TensorFlow" not in line:
            print(line, end="", flush=True)
            lines.append(line)
    return process.wait(), "".join(lines)


def data_path(quick: bool) -> list[tuple[int, str]]:
    """Fill the benchmark database, show the query plans, then load the API under gunicorn."""
    database = BENCH_DATABASES[quick]
    results = [run(script("generate_faces.py", database, "--reset", *(["--quick"] if quick else [])))]
    results.append(run(script("explain_queries.py", database, "--summary")))
    port = free_port()
    env = {**os.environ, "SOCIALFER_DATABASE_URL": database, "SOCIALFER_BROKER_URL": BENCH_REDIS}
    command = [sys.executable, "-m", "socialfer", "serve", "--no-worker", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{port}"
        wait_for_api(api)
        results.append(run(script("api_latency.py", "--api", api, *(["--quick"] if quick else []))))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short form of every benchmark")
    parser.add_argument("--only", nargs="*", default=None, help="steps to run (default: all)")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    steps = {
        "classifier": lambda: [run(script("classifier_speed.py", *quick))],
        "comparison": lambda: [run(script("model_comparison.py", *quick))],
        "crop": lambda: [run(script("crop_margin.py", *quick))],
        "pipeline": lambda: [run(script("pipeline_speed.py", *quick))],
        "workers": lambda: [run(script("worker_throughput.py", *quick))],
        "data": lambda: data_path(args.quick),
        "statistics": lambda: [run(script("statistics_coverage.py", *quick))],
    }
    chosen = args.only or list(steps)
    unknown = set(chosen) - set(steps)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; choose from {list(steps)}")
    verdicts, failed = [], []
    for name in chosen:
        print(f"\n===== {name} =====", flush=True)
        for code, output in steps[name]():
            verdicts += [f"[{name}] {line.strip()}" for line in output.splitlines() if "PASS" in line or "FAIL" in line]
            if code != 0:
                failed.append(f"{name} (exit {code})")
    print("\n===== verdicts =====")
    print("\n".join(verdicts) or "(none printed)")
    if failed:
        print(f"steps that failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
