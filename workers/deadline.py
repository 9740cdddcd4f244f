"""One deadline per attempt, and what enforces it where a per-call timeout cannot.

A socket timeout bounds each `recv`, not a sequence of them: a server that sends one byte
just before every read timeout holds a client for as long as it likes, in the status line
and headers as much as in the body. So the fetcher registers every socket it opens with a
`SocketWatch`, whose timer shuts the sockets down when the deadline passes; a blocked read
then returns at once and the fetch ends as `timeout`. Name lookups run in a helper thread
that is waited on only until the deadline. CPU stages check the deadline themselves (the
decoder between reads) and, in a worker's main thread, `attempt_alarm` raises
`DeadlineExceeded` from a SIGALRM timer as a last resort — which is what bounds an attempt
under Celery's solo pool, where Celery's own time limits do not apply.
"""

from __future__ import annotations

import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
ALARM_GRACE = 1.0  # seconds past the deadline before the alarm interrupts whatever runs


class DeadlineExceeded(Exception):
    """The attempt ran past its deadline; `stage` says where (fetch, decode, analysis)."""

    def __init__(self, stage: str, seconds: float):
        super().__init__(f"{stage} passed the attempt's deadline of {seconds:g} s")
        self.stage = stage
        self.seconds = seconds


@dataclass
class Deadline:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def end(self) -> float:
        return self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def bound(self, timeout: float) -> float:
        """`timeout`, shortened to what is left (never zero, which a socket would take as non-blocking)."""
        return max(0.001, min(timeout, self.remaining()))

    def check(self, stage: str) -> None:
        if self.expired():
            raise DeadlineExceeded(stage, self.seconds)


class SocketWatch:
    """Shuts down every registered socket when the deadline passes (a blocked recv then returns)."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(deadline.remaining(), self.fire)
        self.timer.daemon = True

    def __enter__(self) -> SocketWatch:
        self.timer.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.timer.cancel()

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if self.fired:
                self.shut(sock)

    def fire(self) -> None:
        with self.lock:
            self.fired = True
            for sock in self.sockets:
                self.shut(sock)

    @staticmethod
    def shut(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def call_within(deadline: Deadline, function: Callable[..., T], *args) -> T:
    """`function(*args)` in a helper thread, waited for until the deadline (for blocking lookups).

    A call still running then is abandoned (its thread ends when the call returns) and
    `DeadlineExceeded` is raised.
    """
    results: queue.Queue = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            results.put((True, function(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            results.put((False, exc))

    threading.Thread(target=run, daemon=True, name="deadline-call").start()
    try:
        ok, value = results.get(timeout=deadline.remaining())
    except queue.Empty:
        raise DeadlineExceeded("name lookup", deadline.seconds) from None
    if not ok:
        raise value
    return value


@contextmanager
def attempt_alarm(deadline: Deadline, stage: Callable[[], str]) -> Iterator[None]:
    """Raise `DeadlineExceeded` in this thread once the deadline (plus a grace) has passed.

    Only in the main thread, and only if no other interval timer is armed; elsewhere the
    per-stage bounds alone apply. C code (a decoder, TensorFlow) is interrupted when it
    returns to Python, which the stage bounds keep short.
    """
    usable = threading.current_thread() is threading.main_thread() and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    if not usable:
        yield
        return
    armed = True

    def interrupt(_signum, _frame) -> None:
        if armed:
            raise DeadlineExceeded(stage(), deadline.seconds)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, deadline.remaining() + ALARM_GRACE)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
