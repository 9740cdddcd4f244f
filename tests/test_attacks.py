"""The attack corpus (tests/attack_corpus.py) against the worker: every hostile source ends with its
own code within the attempt's deadline, and the same worker then analyses a good image.

Twice over: `process_image` in this process (the pipeline's main thread, as under the solo
pool) on Postgres and on SQLite; and real workers — `socialfer worker --concurrency 1` (the
solo pool, where Celery's time limits do not apply) on Postgres + Redis, and `socialfer
serve` on the embedded default (a prefork worker beside the API). Deadlines are short here
(settings), the trickle interval stays under the read timeout so only the deadline can end
a trickle, and the margins are generous: these assert that attempts end, not how fast.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
import requests

from core.vocabulary import DONE, FAILED
from db import UPLOAD, Database, ImageFile
from tests.attack_corpus import CASES, AttackCase, HostileServer, hostile_server, upload_bytes
from tests.support import free_port, socialfer_process, wait_until
from tests.test_e2e import wait_for_api
from tests.test_pipeline import FakeAnalyzer, add_image, context, image
from workers.deadline import Deadline, DeadlineExceeded, attempt_alarm
from workers.pipeline import process_image

DEADLINE = 2.0  # seconds per attempt
READ_TIMEOUT = 1.0  # per read; the server trickles a byte every 0.3 s, so reads never time out
MARGIN = 4.0  # what an attempt may take past its deadline here: a loaded 2-core machine, a database write
LIMITS = {"attempt_deadline": DEADLINE, "read_timeout": READ_TIMEOUT, "connect_timeout": 1.0, "max_attempts": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with hostile_server(trickle_interval=0.3, trickle_for=60) as hostile:
        yield hostile


@pytest.fixture(params=["postgres", "sqlite"])
def database(request, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_database")
        return
    sqlite = Database(request.getfixturevalue("sqlite_url"))
    yield sqlite
    sqlite.dispose()


def add_case(database: Database, case: AttackCase, server: HostileServer) -> int:
    if not case.path.startswith("upload:"):
        return add_image(database, server.url(case.path), platform="other")
    image_id = add_image(database, case.path, platform="other")
    with database.session() as session:
        session.add(ImageFile(image_id=image_id, kind=UPLOAD, content_type="image/jpeg", data=upload_bytes(case)))
    return image_id


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_attack_ends_with_its_code_within_the_deadline(
    case: AttackCase, server: HostileServer, database: Database, tmp_path: Path
) -> None:
    ctx = context(database, tmp_path, **LIMITS)
    attack_id, good_id = add_case(database, case, server), add_image(database, server.url("/good.jpg"))

    started = time.monotonic()
    outcome = process_image(attack_id, ctx)
    elapsed = time.monotonic() - started
    assert process_image(good_id, ctx).status == DONE  # the same worker, right after

    stored = image(database, attack_id)
    assert (outcome.status, stored.status, stored.error_code) == (FAILED, FAILED, case.code), stored.error_message
    assert elapsed < DEADLINE + MARGIN, f"{case.name} held the worker {elapsed:.1f} s"


class SlowAnalyzer(FakeAnalyzer):
    """Analysis stuck in Python code far past the deadline (what only the alarm can stop)."""

    def analyze(self, rgb):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            pass
        return []


def test_the_alarm_ends_an_attempt_stuck_past_its_deadline(server: HostileServer, pg_database: Database, tmp_path):
    ctx = context(pg_database, tmp_path, analyzer=SlowAnalyzer(), **LIMITS)
    image_id = add_image(pg_database, server.url("/good.jpg"))

    started = time.monotonic()
    assert process_image(image_id, ctx).status == FAILED
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert image(pg_database, image_id).error_code == "timeout"


def test_the_alarm_is_disarmed_after_the_attempt() -> None:
    with attempt_alarm(Deadline(0.2), lambda: "decode"):
        pass
    time.sleep(1.5)  # past deadline and grace: nothing may fire now
    with pytest.raises(DeadlineExceeded) as caught, attempt_alarm(Deadline(0.1), lambda: "decode"):
        time.sleep(5)
    assert caught.value.stage == "decode"


# --- real workers: Postgres + Redis (solo pool) and the embedded default ------------------------

WORKER_ENV = {
    "SOCIALFER_ATTEMPT_DEADLINE": str(DEADLINE),
    "SOCIALFER_READ_TIMEOUT": str(READ_TIMEOUT),
    "SOCIALFER_CONNECT_TIMEOUT": "1",
    "SOCIALFER_MAX_ATTEMPTS": "1",
    "SOCIALFER_ALLOW_PRIVATE_URLS": "1",
    "SOCIALFER_API_KEYS": None,
}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def submit_corpus(base: str, server: HostileServer) -> tuple[int, int, int]:
    """The URL cases as one batch, the upload case as another, then a good image: three batch ids."""
    urls = [server.url(case.path) for case in CASES if not case.path.startswith("upload:")]
    attacks = requests.post(f"{base}/api/v1/batches", json={"urls": urls}, timeout=30)
    assert attacks.status_code == 202, attacks.text
    [upload_case] = [case for case in CASES if case.path.startswith("upload:")]
    files = {"files": (upload_case.path.removeprefix("upload:"), io.BytesIO(upload_bytes(upload_case)))}
    uploads = requests.post(f"{base}/api/v1/uploads", files=files, timeout=30)
    assert uploads.status_code == 202, uploads.text
    good = requests.post(f"{base}/api/v1/batches", json={"urls": [server.url("/good.jpg")]}, timeout=30)
    assert good.status_code == 202, good.text
    return attacks.json()["id"], uploads.json()["id"], good.json()["id"]


def check_corpus_outcomes(base: str, server: HostileServer) -> None:
    wait_for_api(base)
    batch_ids = submit_corpus(base, server)

    def finished() -> bool:
        return all(requests.get(f"{base}/api/v1/batches/{b}", timeout=10).json()["status"] == "done" for b in batch_ids)

    wait_until(finished, timeout=600, interval=1, what="the corpus to finish")
    images = [
        item
        for batch_id in batch_ids
        for item in requests.get(f"{base}/api/v1/batches/{batch_id}/images?per_page=100", timeout=10).json()["items"]
    ]
    expected = {server.url(case.path) if case.path[0] == "/" else case.path: case.code for case in CASES}
    expected[server.url("/good.jpg")] = "done"
    outcomes = {item["url"]: item["error"]["code"] if item["error"] else item["status"] for item in images}
    assert outcomes == expected
    for item in images:
        held = (parse_time(item["finished_at"]) - parse_time(item["started_at"])).total_seconds()
        assert held < DEADLINE + MARGIN, f"{item['url']} held its worker {held:.1f} s"
    assert next(item for item in images if item["url"] == server.url("/good.jpg"))["status"] == DONE


@pytest.mark.slow
def test_a_solo_worker_on_postgres_and_redis_survives_the_corpus(
    server: HostileServer, pg_database: Database, redis_url: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        **WORKER_ENV,
        "SOCIALFER_DATABASE_URL": pg_database.url,
        "SOCIALFER_BROKER_URL": redis_url,
        "SOCIALFER_DATA_DIR": str(tmp_path),
    }
    with (
        socialfer_process(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        socialfer_process(["serve", "--port", str(port), "--no-worker"], env, tmp_path / "api.log"),
    ):
        check_corpus_outcomes(f"http://127.0.0.1:{port}", server)


@pytest.mark.slow
def test_the_embedded_default_survives_the_corpus(server: HostileServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **WORKER_ENV,
        "SOCIALFER_DATABASE_URL": None,
        "SOCIALFER_BROKER_URL": None,
        "SOCIALFER_DATA_DIR": str(tmp_path / "data"),
    }
    with socialfer_process(["serve", "--port", str(port)], env, tmp_path / "serve.log"):
        check_corpus_outcomes(f"http://127.0.0.1:{port}", server)
