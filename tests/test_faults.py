"""Faults under load, with real worker processes: every image still ends terminal, once.

Each fault runs a batch of 200 small face images. The broker fault uses a Redis this
test starts on another port (never the machine's own); the database fault uses a
throwaway Postgres cluster on another port. Timeouts are shortened through the
environment so the sweeper acts within seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import pytest
import redis
from sqlalchemy import create_engine, func, select, text

from api import create_app
from core.settings import load_settings
from core.vocabulary import DONE, FAILED
from db import Database, Face, Image
from db.migrate import upgrade
from tests.conftest import unavailable
from tests.image_corpus import corpus
from tests.support import free_port, image_server, socialfer_process, wait_until

pytestmark = pytest.mark.slow

BATCH = 200
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
FAST_RECOVERY = {
    "SOCIALFER_ALLOW_PRIVATE_URLS": "1",
    "SOCIALFER_PROCESSING_TIMEOUT": "15",
    "SOCIALFER_TASK_SOFT_TIME_LIMIT": "10",  # below the processing timeout, or the sweeper would requeue running images
    "SOCIALFER_TASK_TIME_LIMIT": "12",
    "SOCIALFER_QUEUED_TIMEOUT": "8",
    "SOCIALFER_SWEEP_INTERVAL": "2",
    "SOCIALFER_API_KEYS": None,
}


@pytest.fixture(scope="module")
def face_server(shared_data: Path, tmp_path_factory) -> Iterator:
    """200 distinct small JPEGs of one face (twitter/5, 225 px), served on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("faces")
    face = cv2.imread(str(shared_data / "social_examples" / "twitter" / "5.jpeg"))
    for i in range(BATCH):
        variant = cv2.convertScaleAbs(face, alpha=1.0, beta=(i % 20) - 10)
        cv2.imwrite(str(folder / f"{i}.jpg"), variant, [cv2.IMWRITE_JPEG_QUALITY, 60 + i % 35])
    with image_server(folder) as server:
        yield server


def submit(settings, urls: list[str]) -> int:
    app = create_app(settings)
    response = app.test_client().post("/api/v1/batches", json={"urls": urls})
    app.extensions["db"].dispose()
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def counts(database: Database, batch_id: int) -> dict[str, int]:
    with database.session() as session:
        rows = session.execute(
            select(Image.status, func.count()).where(Image.batch_id == batch_id).group_by(Image.status)
        ).all()
    return dict(rows)


def wait_terminal(database: Database, batch_id: int, total: int, timeout: float = 300) -> dict[str, int]:
    def finished() -> dict[str, int] | None:
        try:
            now = counts(database, batch_id)
        except Exception:  # the database may be the thing that is down
            return None
        return now if now.get(DONE, 0) + now.get(FAILED, 0) == total else None

    return wait_until(finished, timeout=timeout, interval=1, what=f"batch {batch_id} to finish")


def wait_done_at_least(database: Database, batch_id: int, n: int) -> None:
    wait_until(lambda: counts(database, batch_id).get(DONE, 0) >= n, timeout=180, what=f"{n} images done")


def assert_each_face_stored_once(database: Database, batch_id: int) -> None:
    with database.session() as session:
        stored = dict(
            session.execute(
                select(Face.image_id, func.count()).where(Face.batch_id == batch_id).group_by(Face.image_id)
            ).all()
        )
        images = session.execute(select(Image.id, Image.face_count).where(Image.batch_id == batch_id)).all()
    assert all(stored.get(image_id, 0) == (face_count or 0) for image_id, face_count in images)
    assert sum(stored.values()) == sum(face_count or 0 for _, face_count in images) >= BATCH  # a face each


def worker_env(database_url: str, broker_url: str, tmp_path: Path) -> dict[str, str | None]:
    return {
        "SOCIALFER_DATABASE_URL": database_url,
        "SOCIALFER_BROKER_URL": broker_url,
        "SOCIALFER_DATA_DIR": str(tmp_path),
        **FAST_RECOVERY,
    }


@contextmanager
def own_redis(tmp_path: Path) -> Iterator[tuple[str, callable]]:
    """A Redis of our own (no persistence); yields its URL and a `restart()` that empties it."""
    port = free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    process: list[subprocess.Popen] = []

    def start() -> None:
        process.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: ping(port), timeout=20, what="own redis")

    def restart() -> None:
        process[-1].kill()
        process[-1].wait()
        time.sleep(3)
        start()

    if shutil.which("redis-server") is None:
        unavailable("redis-server binary")
    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        process[-1].kill()
        process[-1].wait()


def ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def throwaway_postgres() -> Iterator[tuple[str, Path, int]]:
    """A fresh Postgres cluster on another port, run as the postgres user; yields its URL and data dir."""
    if PG_BIN is None or shutil.which("runuser") is None or os.geteuid() != 0:
        unavailable("a throwaway Postgres cluster (needs root, runuser and the Postgres binaries)")
    base = Path(tempfile.mkdtemp(prefix="socialfer-pg-"))  # pytest's own temp dirs are closed to other users
    base.chmod(0o755)
    data = base / "pgdata"
    data.mkdir()
    shutil.chown(data, "postgres")
    port = free_port()
    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pg_ctl(data, port, "start")
    try:
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE socialfer"))
        admin.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/socialfer", data, port
    finally:
        pg_ctl(data, port, "stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


def as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120)


def pg_ctl(data: Path, port: int, *action: str) -> None:
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", *action)


def face_urls(server) -> list[str]:
    return [server.url(f"{i}.jpg") for i in range(BATCH)]


def test_kill_9_a_worker_mid_batch(pg_database: Database, redis_url: str, face_server, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    env = worker_env(pg_database.url, redis_url, tmp_path)
    settings = load_settings().with_changes(database_url=pg_database.url, broker_url=redis_url)
    batch_id = submit(settings, face_urls(face_server))
    with socialfer_process(["worker"], env, tmp_path / "first.log") as first:
        wait_done_at_least(pg_database, batch_id, 20)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert counts(pg_database, batch_id).get(DONE, 0) < BATCH
    with socialfer_process(["worker"], env, tmp_path / "second.log"):
        final = wait_terminal(pg_database, batch_id, BATCH)
    assert final == {DONE: BATCH}
    assert_each_face_stored_once(pg_database, batch_id)


def test_broker_restart_mid_batch_loses_no_image(pg_database: Database, face_server, tmp_path: Path) -> None:
    with own_redis(tmp_path) as (broker_url, restart_broker):
        env = worker_env(pg_database.url, broker_url, tmp_path)
        settings = load_settings().with_changes(database_url=pg_database.url, broker_url=broker_url)
        batch_id = submit(settings, face_urls(face_server))
        with socialfer_process(["worker"], env, tmp_path / "worker.log"):
            wait_done_at_least(pg_database, batch_id, 20)
            restart_broker()  # every queued message is gone with it
            final = wait_terminal(pg_database, batch_id, BATCH)
    assert final == {DONE: BATCH}
    assert_each_face_stored_once(pg_database, batch_id)


def test_database_outage_mid_batch(redis_url: str, face_server, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with throwaway_postgres() as (database_url, data, port):
        upgrade(database_url)
        database = Database(database_url)
        env = worker_env(database_url, redis_url, tmp_path)
        settings = load_settings().with_changes(database_url=database_url, broker_url=redis_url)
        batch_id = submit(settings, face_urls(face_server))
        with socialfer_process(["worker"], env, tmp_path / "worker.log"):
            wait_done_at_least(database, batch_id, 20)
            pg_ctl(data, port, "stop", "-m", "fast")
            time.sleep(5)
            pg_ctl(data, port, "start")
            final = wait_terminal(database, batch_id, BATCH)
        assert final == {DONE: BATCH}
        assert_each_face_stored_once(database, batch_id)
        database.dispose()


PIPELINE_OUTCOME = {"empty": "empty_body", "page.html": "no_image_in_page"}  # caught before decoding


def test_bad_images_fail_cleanly_and_the_worker_goes_on(pg_database, redis_url: str, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = corpus()
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    env = worker_env(pg_database.url, redis_url, tmp_path)
    settings = load_settings().with_changes(database_url=pg_database.url, broker_url=redis_url)
    with image_server(folder) as server, socialfer_process(["worker"], env, tmp_path / "worker.log") as worker:
        names = sorted(files)
        bad_batch = submit(settings, [server.url(name) for name in names])
        wait_terminal(pg_database, bad_batch, len(names), timeout=180)
        (folder / "good.jpg").write_bytes(files["cmyk.jpg"][0])
        good_batch = submit(settings, [server.url("good.jpg")])
        assert wait_terminal(pg_database, good_batch, 1, timeout=120) == {DONE: 1}
        assert worker.poll() is None  # the same worker, still running
    with pg_database.session() as session:
        rows = session.execute(select(Image.url, Image.status, Image.error_code).where(Image.batch_id == bad_batch))
        outcome = {url.rsplit("/", 1)[-1]: error or status for url, status, error in rows}
    expected = {
        name: PIPELINE_OUTCOME.get(name, want if isinstance(want, str) else DONE) for name, (_, want) in files.items()
    }
    assert outcome == expected
