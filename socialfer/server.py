"""Running the API under gunicorn from `socialfer serve`, with a worker alongside on the embedded default."""

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
