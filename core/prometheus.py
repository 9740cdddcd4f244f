"""Prometheus metrics that add up across processes: gunicorn's workers and Celery's prefork pool.

prometheus_client keeps one set of files per process in `PROMETHEUS_MULTIPROC_DIR` and sums
them when scraped. The variable must be set before prometheus_client is first imported, so
`socialfer serve` and `socialfer worker` call `prepare_multiprocess_dir` first thing and pass
the folder on in their settings (`prometheus_multiproc_dir`). Without one (tests calling
functions in one process) each process's own default registry is read.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(role: str, given: Path | None) -> Path:
    """The metrics folder of this process tree: the one configured, else a fresh one; exported for the library.

    A fresh folder is removed when the process that made it exits, and only then: forked
    children (gunicorn workers, pool processes) inherit the exit hook and must not run it.
    """
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(given)
        return given
    path = Path(tempfile.mkdtemp(prefix=f"socialfer-{role}-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def exposition_registry(multiproc_dir: Path | None, *extra_collectors):
    """What a scrape should read: every process's files in `multiproc_dir`, else this process's metrics."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if multiproc_dir is not None:
        MultiProcessCollector(registry, path=str(multiproc_dir))
    else:
        registry.register(ProcessMetrics(REGISTRY))
    for collector in extra_collectors:
        registry.register(collector)
    return registry


class ProcessMetrics:
    """This process's own registry, readable through another registry (no names claimed twice)."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()


def mark_process_dead(pid: int, multiproc_dir: Path) -> None:
    """gunicorn's `child_exit` hook: drop the live-gauge files of a worker that exited (counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(multiproc_dir))
