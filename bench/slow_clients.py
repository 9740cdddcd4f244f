"""Does the API keep answering while slow clients hold connections open?

    PYTHONPATH=$PWD python bench/slow_clients.py [--clients 100] [--servers socialfer,gthread,gevent,waitress-1000]

For each server it starts the API on the embedded default (a throwaway data dir, no worker),
opens `--clients` connections that each send a request line and then one header byte per
second (a slowloris), waits until all are open, and then times ten `GET /healthz` from a
fresh client (each with a 10 s limit; a request that got no answer counts as 10 s).

Servers: `socialfer` is `socialfer serve` as shipped; `gthread` is gunicorn's threaded
worker with 1 process x 4 threads (what `socialfer serve` ran before); `gevent` is
gunicorn's gevent worker; `waitress` is waitress with its defaults (4 threads, buffering) and
`waitress-1000` the same with its connection limit raised to 1000 (both need `pip install
waitress`, which the project does not depend on).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIMIT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(name: str, port: int) -> list[str]:
    app = "api:create_app()"
    bind = f"127.0.0.1:{port}"
    return {
        "socialfer": [sys.executable, "-m", "socialfer", "serve", "--port", str(port), "--no-worker"],
        "gthread": [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-b", bind, app],
        "gevent": [sys.executable, "-m", "gunicorn", "-k", "gevent", "-b", bind, app],
        "waitress": [sys.executable, "-m", "waitress", "--listen", bind, "--call", "api:create_app"],
        "waitress-1000": [
            sys.executable,
            "-m",
            "waitress",
            "--listen",
            bind,
            "--connection-limit",
            "1000",
            "--call",
            "api:create_app",
        ],
    }[name]


def slow_client(port: int, opened: threading.Barrier, stop: threading.Event) -> None:
    """A request line, then a header byte per second, until told to stop."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n")
    except OSError:
        opened.abort()
        return
    with sock:
        with contextlib.suppress(threading.BrokenBarrierError):
            opened.wait(timeout=60)
        while not stop.wait(1.0):
            try:
                sock.sendall(b"X")
            except OSError:
                return


def healthz_seconds(base: str) -> float:
    started = time.monotonic()
    try:
        requests.get(f"{base}/healthz", timeout=LIMIT)
    except requests.RequestException:
        return LIMIT
    return time.monotonic() - started


def measure(name: str, clients: int) -> str:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCIALFER_")}
        env |= {"SOCIALFER_DATA_DIR": data, "PYTHONPATH": str(PROJECT_ROOT)}
        subprocess.run([sys.executable, "-m", "socialfer", "migrate"], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            server_command(name, port), env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stop = threading.Event()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if healthz_seconds(base) < LIMIT and requests.get(f"{base}/livez", timeout=2).status_code in (200, 404):
                    break
                time.sleep(0.5)
            quiet = statistics.median(healthz_seconds(base) for _ in range(5))
            opened = threading.Barrier(clients + 1)
            threads = [
                threading.Thread(target=slow_client, args=(port, opened, stop), daemon=True) for _ in range(clients)
            ]
            for thread in threads:
                thread.start()
            with contextlib.suppress(threading.BrokenBarrierError):
                opened.wait(timeout=60)
            time.sleep(2)  # every slow client has sent a few bytes
            loaded = [healthz_seconds(base) for _ in range(10)]
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=30)
    return (
        f"{name:10} quiet {quiet * 1000:7.1f} ms   with {clients} slow clients: "
        f"median {statistics.median(loaded) * 1000:8.1f} ms, max {max(loaded) * 1000:8.1f} ms, "
        f"unanswered in {LIMIT:.0f} s: {sum(s >= LIMIT for s in loaded)}/10"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--servers", default="socialfer,gthread,gevent")
    args = parser.parse_args()
    for name in args.servers.split(","):
        print(measure(name, args.clients), flush=True)


if __name__ == "__main__":
    main()
