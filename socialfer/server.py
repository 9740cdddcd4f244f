"""Running the API under gunicorn from `socialfer serve`, with a worker alongside on the embedded default.

Gunicorn runs gevent workers: each connection is a greenlet, so clients that send their
request a byte at a time (or read the answer slowly) hold a greenlet, not one of a few
threads. With 100 such clients `/healthz` still answers in milliseconds, where the threaded
worker (1 process x 4 threads) answered nothing for as long as they trickled
(`python bench/slow_clients.py`, BENCHMARKS.md). psycopg, redis-py and the SQLAlchemy pool
all cooperate with gevent's patched sockets and locks.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

from gunicorn.app.base import BaseApplication

from core.settings import Settings


class GunicornServer(BaseApplication):
    """Gunicorn with options from code instead of its command line."""

    def __init__(self, app_uri: str, options: dict, settings: Settings | None = None):
        self.app_uri = app_uri
        self.options = options
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from api import create_app

        return create_app(self.settings)


SLOW_CLIENT_LIMIT = 1000  # connections per gunicorn process (greenlets), however slowly they talk
REQUEST_TIMEOUT = 60  # seconds a gevent worker may go without notifying the arbiter before it is restarted


def gunicorn_options(bind: str, workers: int) -> dict:
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "gevent",
        "worker_connections": SLOW_CLIENT_LIMIT,
        "timeout": REQUEST_TIMEOUT,
        "accesslog": "-",
        "loglevel": "warning",
    }


def start_worker_process(concurrency: int | None = None) -> subprocess.Popen:
    """A `socialfer worker` child that dies with us (default concurrency: one process per CPU)."""
    options = ["--concurrency", str(concurrency)] if concurrency else []
    process = subprocess.Popen(
        [sys.executable, "-m", "socialfer", "worker", *options],
        env=os.environ.copy(),
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    atexit.register(stop)
    return process


def served_hosts(settings: Settings, host: str) -> tuple[str, ...]:
    """The Host names to answer to: the setting, or loopback plus the address bound (and this machine's
    name when bound to every interface)."""
    import socket

    from api.security import LOOPBACK_HOSTS

    if settings.allowed_hosts:
        return settings.allowed_hosts
    names = list(LOOPBACK_HOSTS)
    if host in ("0.0.0.0", "::", ""):
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(host)
    return tuple(dict.fromkeys(names))
