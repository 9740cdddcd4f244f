"""Test helpers: a local image server, worker subprocesses, and polling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from core.settings import Settings, load_settings
from workers.fetch import FetchPolicy, system_resolver

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# What a person counts in each example photo (the data README: 13 in all), and what the shipped
# detector finds: the small face lying down in instagram/3 included, nothing spurious (the logo
# on facebook/3, the drawn boxes) found.
EXPECTED_FACES = {
    "facebook/1": 1,
    "facebook/2": 1,
    "facebook/3": 2,
    "instagram/1": 1,
    "instagram/2": 1,
    "instagram/3": 1,
    "twitter/1": 2,
    "twitter/2": 1,
    "twitter/3": 1,
    "twitter/4": 1,
    "twitter/5": 1,
}


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings as the environment gives them, with a private data dir and `overrides`."""
    return load_settings().with_changes(data_dir=tmp_path, **overrides)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ImageHandler(SimpleHTTPRequestHandler):
    """Serves a directory, plus a few routes that misbehave on purpose."""

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/text"):
            return self.reply(200, b"this is not an image\n" * 10, "text/plain")
        if self.path.startswith("/page"):
            return self.reply(200, b"<html><body>hello</body></html>", "text/html")
        query = parse_qs(urlsplit(self.path).query)
        if self.path.startswith("/to?"):
            return self.redirect(query["url"][0])
        if self.path.startswith("/og?"):
            page = f'<html><head><meta property="og:image" content="{query["url"][0]}"></head></html>'
            return self.reply(200, page.encode(), "text/html; charset=utf-8")
        if self.path.startswith("/busy"):
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/unavailable"):
            return self.reply(503, b"down for maintenance", "text/plain")
        if self.path.startswith("/redirect-loop"):
            return self.redirect("/redirect-loop")
        if self.path.startswith("/redirect/"):
            return self.redirect(self.path[len("/redirect") :])
        if self.path.startswith("/slow"):
            time.sleep(3)
            return self.reply(200, b"late", "image/jpeg")
        if self.path.startswith("/big"):
            return self.reply(200, b"\xff\xd8\xff" + b"0" * (3 * 1024 * 1024), "image/jpeg")
        return super().do_GET()

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """Clients that hang up early (timeouts, size caps) are expected here."""


@contextmanager
def image_server(directory: Path) -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on 127.0.0.1 serving `directory`; `.url(path)` builds URLs."""
    server = QuietServer(("127.0.0.1", 0), partial(ImageHandler, directory=str(directory)))
    server.hits = []  # type: ignore[attr-defined]
    server.url = lambda path="": f"http://127.0.0.1:{server.server_port}/{path.lstrip('/')}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll until `predicate()` is truthy; return its value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def socialfer_process(args: list[str], env: dict[str, str | None], log_path: Path) -> Iterator[subprocess.Popen]:
    """Run `python -m socialfer ARGS` with `env` applied (None removes a variable); stop its group afterwards."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key, value in env.items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "socialfer", *args],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_process_group(process)


def stop_process_group(process: subprocess.Popen) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class StagedPolicy(FetchPolicy):
    """Strict policy with a resolver table, and one local port that counts as a public host."""

    def __init__(self, names: dict[str, list[str]], public_port: int, allowed_ports: frozenset[int] | None = None):
        super().__init__(allow_private=False, allowed_ports=allowed_ports, resolver=self.resolve)
        self.names, self.public_port, self.lookups = names, public_port, []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answer = self.names.get(host)
        return answer() if callable(answer) else answer if answer is not None else system_resolver(host, port)

    def address_allowed(self, address: str, port: int) -> bool:
        return (address == "127.0.0.1" and port == self.public_port) or super().address_allowed(address, port)
