"""The HTTP API against the real Postgres and Redis (and once against the embedded SQLite default)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlalchemy import func, select, update

from api import create_app
from api.auth import ACCESS, PUBLIC
from api.schemas import BatchCreate, FaceListQuery, error_for
from api.serialize import iso
from core.settings import Settings, load_settings
from core.vocabulary import DONE, EMOTIONS, FAILED, PLATFORMS, PROCESSING, QUEUED
from db import Batch, Database, Face, Image
from tests.factories import T0, StatsData, add_batch, add_faces, add_image, counting_statements, seed_stats
from tests.schema_check import problems, resolve
from workers.celery_app import ANALYZE_IMAGE, QUEUE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEAD_BROKER = "redis://127.0.0.1:1/0"


def generated_openapi() -> dict[str, Any]:
    """The document the app serves, generated from the routes and api/schemas.py; no settings change it,
    so an app on in-memory SQLite builds the same one."""
    app = create_app(load_settings().with_changes(database_url="sqlite://", broker_url="memory://"))
    document = app.api_doc
    app.extensions["db"].dispose()
    return document


OPENAPI = generated_openapi()

ClientFactory = Callable[..., FlaskClient]


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    """The Redis broker database with the task queue emptied before and after."""
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)
    client.close()


@pytest.fixture
def settings(tmp_path: Path, pg_database: Database, pg_url: str, redis_url: str, broker: redis.Redis) -> Settings:
    return load_settings().with_changes(
        database_url=pg_url, broker_url=redis_url, data_dir=tmp_path, api_keys=(), webhook_secret="test-webhook-secret"
    )


@pytest.fixture
def make_client(settings: Settings) -> Iterator[ClientFactory]:
    """Clients for apps built from `settings` with overrides; their engines are disposed afterwards."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> FlaskClient:
        app = create_app(settings.with_changes(**overrides))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["db"].dispose()


@pytest.fixture
def client(make_client: ClientFactory) -> FlaskClient:
    return make_client()


def expected_face(face_id: int, image_id: int, box: list[int], emotion: str) -> dict[str, Any]:
    """A face as `factories.add_faces` stores it and the API should return it."""
    return {
        "id": face_id,
        "image_id": image_id,
        "box": box,
        "confidence": 0.99,
        "emotion": emotion,
        "scores": {name: (0.94 if name == emotion else 0.01) for name in EMOTIONS},
        "size_px": min(box[2], box[3]),
        "low_resolution": False,
        "uncertain": False,
    }


def stored(database: Database) -> tuple[int, int]:
    """(batches, images) in the database."""
    with database.session() as session:
        batches = session.scalar(select(func.count()).select_from(Batch))
        images = session.scalar(select(func.count()).select_from(Image))
        return batches, images


def assert_error(response: Any, status: int, code: str, message_start: str = "") -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"].startswith(message_start), body["error"]["message"]


def conforms(body: Any, schema_name: str) -> None:
    """The response matches its schema in the OpenAPI document, with no undocumented keys."""
    found = problems(body, {"$ref": f"#/components/schemas/{schema_name}"}, OPENAPI)
    assert found == [], found


def queued_task_ids(broker: redis.Redis) -> list[int]:
    """The image ids of the analysis tasks waiting in the Redis queue (kombu: JSON, body base64)."""
    ids = []
    for raw in broker.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == ANALYZE_IMAGE
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


def set_status(database: Database, image_ids: list[int], status: str, face_count: int | None = None) -> None:
    with database.session() as session:
        session.execute(update(Image).where(Image.id.in_(image_ids)).values(status=status, face_count=face_count))


URLS = [
    "https://scontent-ams2-1.xx.fbcdn.net/v/a.jpg",
    "https://www.instagram.com/p/abc/media/?size=l",
    "https://pbs.twimg.com/media/abc.jpg",
    "https://images.example.org/cat.png",
]


# --- submitting batches ----------------------------------------------------------------------------


def test_submit_stores_queued_images_and_publishes_one_task_each(
    client: FlaskClient, pg_database: Database, broker: redis.Redis
) -> None:
    response = client.post("/api/v1/batches", json={"urls": URLS, "name": "  spring campaign  "})

    assert response.status_code == 202
    body = response.get_json()
    conforms(body, "Batch")
    assert response.headers["Location"] == f"/api/v1/batches/{body['id']}"
    assert {key: body[key] for key in body if key not in ("id", "created_at")} == {
        "name": "spring campaign",
        "platform": None,
        "total": 4,
        "queued": 4,
        "processing": 0,
        "done": 0,
        "failed": 0,
        "faces": 0,
        "status": "queued",
        "callback": None,
    }
    assert body["created_at"].endswith("Z")
    assert abs(datetime.fromisoformat(body["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)

    with pg_database.session() as session:
        images = session.scalars(select(Image).order_by(Image.id)).all()
        assert [image.url for image in images] == URLS
        assert {image.status for image in images} == {QUEUED}
        assert {image.batch_id for image in images} == {body["id"]}
        assert [image.platform for image in images] == ["facebook", "instagram", "twitter", "other"]
        image_ids = [image.id for image in images]
    assert broker.llen(QUEUE) == 4
    assert sorted(queued_task_ids(broker)) == image_ids


def test_explicit_platform_overrides_inference(client: FlaskClient, pg_database: Database) -> None:
    response = client.post("/api/v1/batches", json={"urls": URLS, "platform": "instagram"})

    assert response.status_code == 202
    assert response.get_json()["platform"] == "instagram"
    with pg_database.session() as session:
        assert session.scalars(select(Image.platform)).all() == ["instagram"] * 4


def test_submitted_batch_is_readable_at_its_location(client: FlaskClient) -> None:
    created = client.post("/api/v1/batches", json={"urls": URLS[:2]})

    fetched = client.get(created.headers["Location"])

    assert fetched.status_code == 200
    assert fetched.get_json() == created.get_json()


LONG_URL = "https://example.com/" + "a" * 41  # 61 characters, over the max_url_length=60 used below


@pytest.mark.parametrize(
    ("body", "code", "message_start"),
    [
        ("not json", "invalid_json", ""),
        (["https://example.com/a.jpg"], "invalid_json", ""),
        ({}, "invalid_urls", "urls:"),
        ({"urls": "https://example.com/a.jpg"}, "invalid_urls", "urls:"),
        ({"urls": None}, "invalid_urls", "urls:"),
        ({"urls": []}, "invalid_urls", "urls: must hold 1 to 3 URLs, got 0"),
        ({"urls": ["https://example.com/a.jpg"] * 4}, "invalid_urls", "urls: must hold 1 to 3 URLs, got 4"),
        ({"urls": ["https://example.com/a.jpg", 7]}, "invalid_url", "urls[1]: must be a string"),
        ({"urls": ["https://example.com/a.jpg", None]}, "invalid_url", "urls[1]: must be a string"),
        ({"urls": ["https://a.com/1", "https://a.com/2", LONG_URL]}, "invalid_url", "urls[2]: longer than 60"),
        ({"urls": ["ftp://example.com/a.jpg"]}, "invalid_url", "urls[0]: scheme must be http or https"),
        ({"urls": ["javascript:alert(1)"]}, "invalid_url", "urls[0]: scheme must be http or https"),
        ({"urls": ["example.com/a.jpg"]}, "invalid_url", "urls[0]: scheme must be http or https"),
        ({"urls": ["https://a.com/1", "http:///a.jpg"]}, "invalid_url", "urls[1]: has no host"),
        ({"urls": ["https://a.com/1", "https://"]}, "invalid_url", "urls[1]: has no host"),
        ({"urls": ["https://exa mple.com/a.jpg"]}, "invalid_url", "urls[0]: contains whitespace"),
        ({"urls": ["https://example.com/a.jpg\n"]}, "invalid_url", "urls[0]: contains whitespace"),
        ({"urls": ["https://[::1/a.jpg"]}, "invalid_url", "urls[0]: not a valid URL"),
        ({"urls": ["https://example.com:99999/a.jpg"]}, "invalid_url", "urls[0]: not a valid URL"),
        ({"urls": ["https://a.com/1"], "platform": "myspace"}, "invalid_platform", "platform:"),
        ({"urls": ["https://a.com/1"], "platform": 3}, "invalid_platform", "platform:"),
        ({"urls": ["https://a.com/1"], "name": "n" * 201}, "invalid_name", "name:"),
        ({"urls": ["https://a.com/1"], "name": ["x"]}, "invalid_name", "name:"),
        ({"urls": ["https://a.com/1"], "name": "a\x00b"}, "invalid_name", "name: must not contain NUL"),
    ],
)
def test_invalid_batches_are_rejected_and_store_nothing(
    make_client: ClientFactory,
    pg_database: Database,
    broker: redis.Redis,
    body: Any,
    code: str,
    message_start: str,
) -> None:
    client = make_client(max_batch_urls=3, max_url_length=60)
    if isinstance(body, str):
        response = client.post("/api/v1/batches", data=body, content_type="application/json")
    else:
        response = client.post("/api/v1/batches", json=body)

    assert_error(response, 400, code, message_start)
    assert stored(pg_database) == (0, 0)
    assert broker.llen(QUEUE) == 0


def test_body_must_be_sent_as_json(client: FlaskClient, pg_database: Database) -> None:
    response = client.post("/api/v1/batches", data='{"urls": ["https://a.com/1"]}', content_type="text/plain")

    assert_error(response, 400, "invalid_json", "the body must be a JSON object")
    assert stored(pg_database) == (0, 0)


def test_urls_at_the_limits_are_accepted(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_batch_urls=3, max_url_length=60)
    url = "https://example.com/" + "a" * 40  # exactly 60 characters

    response = client.post("/api/v1/batches", json={"urls": [url] * 3, "name": "n" * 200, "platform": None})

    assert response.status_code == 202
    assert stored(pg_database) == (1, 3)


def test_oversized_body_is_413_json(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_batch_urls=2, max_url_length=100)
    assert client.application.config["MAX_CONTENT_LENGTH"] < 100_000

    response = client.post("/api/v1/batches", json={"urls": ["https://a.com/" + "a" * 100_000]})

    assert_error(response, 413, "payload_too_large")
    assert stored(pg_database) == (0, 0)


def test_largest_valid_batch_fits_under_the_body_limit(settings: Settings) -> None:
    app = create_app(settings)
    body = json.dumps({"urls": ["https://a.com/" + "a" * (settings.max_url_length - 14)] * settings.max_batch_urls})
    assert len(body) < app.config["MAX_CONTENT_LENGTH"]
    app.extensions["db"].dispose()


# --- API keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer", "Bearer key-one-extra", "Basic key-one", "key-one", "Bearer kéy"],
)
def test_posts_without_a_valid_key_are_401(
    make_client: ClientFactory, pg_database: Database, broker: redis.Redis, authorization: str | None
) -> None:
    client = make_client(api_keys=("key-one", "key-two"))
    headers = {"Authorization": authorization} if authorization else {}

    response = client.post("/api/v1/batches", json={"urls": URLS}, headers=headers)

    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert stored(pg_database) == (0, 0)
    assert broker.llen(QUEUE) == 0


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_posts_with_any_configured_key_are_accepted(
    make_client: ClientFactory, pg_database: Database, key: str
) -> None:
    client = make_client(api_keys=("key-one", "key-two"))

    response = client.post("/api/v1/batches", json={"urls": URLS}, headers={"Authorization": f"bearer {key}"})

    assert response.status_code == 202
    assert stored(pg_database) == (1, 4)


def test_reads_need_a_key_once_keys_exist(make_client: ClientFactory) -> None:
    client = make_client(api_keys=("key-one",))

    assert_error(client.get("/api/v1/batches"), 401, "unauthorized")
    assert_error(client.get("/api/v1/faces/export"), 401, "unauthorized")
    assert client.get("/api/v1/stats", headers={"Authorization": "Bearer key-one"}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_public_reads_is_an_explicit_opt_in(make_client: ClientFactory) -> None:
    client = make_client(api_keys=("key-one",), public_reads=True)

    assert client.get("/api/v1/batches").status_code == 200
    assert client.get("/api/v1/stats").status_code == 200
    assert_error(client.post("/api/v1/batches", json={"urls": URLS}), 401, "unauthorized")


def test_unknown_routes_are_404_not_401_with_api_keys(make_client: ClientFactory) -> None:
    client = make_client(api_keys=("key-one",))

    assert_error(client.post("/api/v1/nothing-here", json={}), 404, "not_found")
    assert_error(client.post("/api/v1/stats", json={}), 405, "method_not_allowed")


# --- broker down ----------------------------------------------------------------------------------


def test_broker_down_is_503_and_stores_nothing(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(broker_url=DEAD_BROKER)

    started = time.monotonic()
    response = client.post("/api/v1/batches", json={"urls": URLS})
    elapsed = time.monotonic() - started

    assert_error(response, 503, "broker_unavailable")
    assert stored(pg_database) == (0, 0)
    assert elapsed < 5, f"took {elapsed:.1f}s to give up on the broker"


# --- reading batches and images --------------------------------------------------------------------


def submit(client: FlaskClient, count: int) -> tuple[int, list[int]]:
    """A batch of `count` URLs through the API; returns its id and image ids."""
    response = client.post("/api/v1/batches", json={"urls": [f"https://x.com/{n}.jpg" for n in range(count)]})
    assert response.status_code == 202
    batch_id = response.get_json()["id"]
    with client.application.extensions["db"].session() as session:
        return batch_id, list(session.scalars(select(Image.id).where(Image.batch_id == batch_id).order_by(Image.id)))


def counts_of(client: FlaskClient, batch_id: int) -> tuple[int, int, int, int, int, str]:
    body = client.get(f"/api/v1/batches/{batch_id}").get_json()
    conforms(body, "Batch")
    return body["queued"], body["processing"], body["done"], body["failed"], body["faces"], body["status"]


def test_batch_counts_and_status_follow_the_images(client: FlaskClient, pg_database: Database) -> None:
    batch_id, ids = submit(client, 4)
    assert counts_of(client, batch_id) == (4, 0, 0, 0, 0, "queued")

    set_status(pg_database, ids[:1], PROCESSING)
    assert counts_of(client, batch_id) == (3, 1, 0, 0, 0, "processing")

    set_status(pg_database, ids[:1], DONE, face_count=3)
    set_status(pg_database, ids[1:2], FAILED)
    assert counts_of(client, batch_id) == (2, 0, 1, 1, 3, "processing")

    set_status(pg_database, ids[2:3], DONE, face_count=2)
    set_status(pg_database, ids[3:], PROCESSING)
    assert counts_of(client, batch_id) == (0, 1, 2, 1, 5, "processing")

    set_status(pg_database, ids[3:], DONE, face_count=0)
    assert counts_of(client, batch_id) == (0, 0, 3, 1, 5, "done")


def test_list_batches_newest_first_with_limit(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_page_size=3)
    ids = [submit(client, 1)[0] for _ in range(4)]
    set_status(pg_database, submit(client, 1)[1], DONE, face_count=2)  # a fifth batch, finished
    ids.append(ids[-1] + 1)

    default = client.get("/api/v1/batches").get_json()
    two = client.get("/api/v1/batches?limit=2").get_json()

    assert [batch["id"] for batch in default["items"]] == ids[::-1][:3]  # capped at max_page_size
    assert [batch["id"] for batch in two["items"]] == ids[::-1][:2]
    assert (two["items"][0]["status"], two["items"][0]["faces"]) == ("done", 2)
    assert two["items"][1]["status"] == "queued"
    conforms(default, "BatchList")


def test_batch_images_pages(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_page_size=4)
    batch_id, ids = submit(client, 5)
    set_status(pg_database, ids[1:3], FAILED)

    def page(query: str) -> dict[str, Any]:
        response = client.get(f"/api/v1/batches/{batch_id}/images?{query}")
        assert response.status_code == 200
        conforms(response.get_json(), "ImagePage")
        return response.get_json()

    first, last, beyond = page("per_page=2"), page("per_page=2&page=3"), page("per_page=2&page=4")
    assert [image["id"] for image in first["items"]] == ids[:2]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert [image["id"] for image in last["items"]] == ids[4:]
    assert (beyond["items"], beyond["page"], beyond["pages"]) == ([], 4, 3)

    failed = page("status=failed")
    assert [image["id"] for image in failed["items"]] == ids[1:3]
    assert (failed["total"], failed["pages"], failed["per_page"]) == (2, 1, 4)

    capped = page("per_page=500")
    assert (capped["per_page"], capped["pages"], len(capped["items"])) == (4, 2, 4)


def test_batch_images_load_faces_without_n_plus_one(client: FlaskClient, pg_database: Database) -> None:
    with pg_database.session() as session:
        batch = add_batch(session, total=6)
        for _ in range(6):
            add_image(session, batch, emotions=("happy", "sad"))
        batch_id = batch.id
    database: Database = client.application.extensions["db"]

    def statements_for(per_page: int) -> int:
        with counting_statements(database) as statements:
            body = client.get(f"/api/v1/batches/{batch_id}/images?per_page={per_page}").get_json()
        assert len(body["items"]) == per_page
        assert all(len(image["faces"]) == 2 for image in body["items"])
        return len([statement for statement in statements if "api_keys" not in statement])  # access control's own

    assert statements_for(1) == statements_for(6) == 4  # batch, count, images, faces


def test_image_json_with_faces_and_error(client: FlaskClient, pg_database: Database) -> None:
    finished = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
    with pg_database.session() as session:
        batch = add_batch(session, total=2)
        done = add_image(session, batch, platform="facebook", finished_at=finished, emotions=("sad", "happy"))
        done.width, done.height, done.content_type, done.byte_size = 640, 480, "image/jpeg", 12345
        done.attempts, done.fetch_ms, done.analyze_ms = 1, 12.5, 80.25
        failed = add_image(session, batch, status=FAILED)
        failed.error_code, failed.error_message = "not_an_image", "content-type text/html"
        done_id, failed_id, batch_id = done.id, failed.id, batch.id
        face_ids = session.scalars(select(Face.id).where(Face.image_id == done_id).order_by(Face.id)).all()

    body = client.get(f"/api/v1/images/{done_id}").get_json()
    conforms(body, "Image")
    assert {key: body[key] for key in body if key not in ("created_at", "faces")} == {
        "id": done_id,
        "batch_id": batch_id,
        "url": "https://example.com/a.jpg",
        "platform": "facebook",
        "status": "done",
        "error": None,
        "width": 640,
        "height": 480,
        "content_type": "image/jpeg",
        "byte_size": 12345,
        "face_count": 2,
        "attempts": 1,
        "timings": {"fetch_ms": 12.5, "analyze_ms": 80.25},
        "started_at": None,
        "finished_at": "2025-05-06T07:08:09Z",
        "detection": {"min_face_px": None, "scan_capped": False, "faces_beyond_cap": 0},  # set by the worker
    }
    assert body["faces"] == [
        expected_face(face_ids[0], done_id, [0, 5, 40, 48], "sad"),
        expected_face(face_ids[1], done_id, [10, 5, 40, 48], "happy"),
    ]
    assert list(body["faces"][0]["scores"]) == list(EMOTIONS)

    failed_body = client.get(f"/api/v1/images/{failed_id}").get_json()
    conforms(failed_body, "Image")
    assert failed_body["error"] == {"code": "not_an_image", "message": "content-type text/html"}
    assert (failed_body["faces"], failed_body["face_count"]) == ([], None)


# --- faces ----------------------------------------------------------------------------------------


@pytest.fixture
def seeded(pg_database: Database) -> StatsData:
    with pg_database.session() as session:
        return seed_stats(session)


def face_ids(client: FlaskClient, query: str) -> tuple[list[int], int | None]:
    response = client.get(f"/api/v1/faces?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    conforms(body, "FacePage")
    return [face["id"] for face in body["items"]], body["next_cursor"]


def test_faces_filters(client: FlaskClient, seeded: StatsData) -> None:
    f1, f2, f3, f4, f5, f6 = seeded.face_ids  # happy happy sad (facebook, A) neutral (instagram, A) angry happy (B)
    assert face_ids(client, "") == ([f6, f5, f4, f3, f2, f1], None)
    assert face_ids(client, "emotion=happy") == ([f6, f2, f1], None)
    assert face_ids(client, "platform=facebook") == ([f3, f2, f1], None)
    assert face_ids(client, "platform=twitter&emotion=happy") == ([f6], None)
    assert face_ids(client, f"batch_id={seeded.batch_b}") == ([f6, f5], None)
    assert face_ids(client, f"since={iso(T0 + timedelta(hours=1))}") == ([f6, f5, f4], None)
    assert face_ids(client, "since=2025-03-01T15:00:00%2B02:00") == ([f6, f5, f4], None)
    assert face_ids(client, "since=2025-03-01T15:00:00+02:00") == ([f6, f5, f4], None)  # "+" sent unencoded
    assert face_ids(client, "until=2025-03-01T13:00:00Z") == ([f3, f2, f1], None)
    assert face_ids(client, "since=2025-03-01&until=2025-03-02") == ([f4], None)
    assert face_ids(client, "emotion=fear") == ([], None)


def test_faces_cursor_pagination(client: FlaskClient, seeded: StatsData) -> None:
    f1, f2, f3, f4, f5, f6 = seeded.face_ids
    assert face_ids(client, "limit=4") == ([f6, f5, f4, f3], f3)
    assert face_ids(client, f"limit=4&cursor={f3}") == ([f2, f1], None)
    assert face_ids(client, f"limit=2&cursor={f3}") == ([f2, f1], None)
    assert face_ids(client, "limit=2&emotion=happy") == ([f6, f2], f2)
    assert face_ids(client, f"limit=2&emotion=happy&cursor={f2}") == ([f1], None)


def test_listed_faces_say_where_and_when(client: FlaskClient, seeded: StatsData) -> None:
    face = client.get("/api/v1/faces?limit=1").get_json()["items"][0]
    assert {key: face[key] for key in ("id", "platform", "batch_id", "analyzed_at", "emotion")} == {
        "id": seeded.face_ids[-1],
        "platform": "twitter",
        "batch_id": seeded.batch_b,
        "analyzed_at": "2025-03-02T12:00:00Z",
        "emotion": "happy",
    }


# --- stats ----------------------------------------------------------------------------------------


def emotions(faces: int, **counts: int) -> dict[str, dict[str, float]]:
    return {
        name: {"count": counts.get(name, 0), "share": counts.get(name, 0) / faces if faces else 0.0}
        for name in EMOTIONS
    }


def block(images: int, with_faces: int, faces: int, *, flagged: tuple[int, int] = (0, 0), **counts: int) -> dict:
    """A /stats block; `flagged`: its (uncertain, low_resolution) faces."""
    return {
        "images": images,
        "images_with_faces": with_faces,
        "faces": faces,
        "uncertain": flagged[0],
        "low_resolution": flagged[1],
        "emotions": emotions(faces, **counts),
    }


FACEBOOK = block(2, 1, 3, happy=2, sad=1)
INSTAGRAM = block(1, 1, 1, neutral=1)
TWITTER = block(1, 1, 2, angry=1, happy=1)


STATISTICS_FIELDS = ("interval", "corrected", "reliable", "statistics")  # tests/test_statistics_api.py checks them


def counts_only(body: Any) -> Any:
    """An answer without its intervals, corrected shares and reliability: the counts these tests check."""
    if isinstance(body, dict):
        return {key: counts_only(value) for key, value in body.items() if key not in STATISTICS_FIELDS}
    return body


def get_stats(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/v1/stats?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    conforms(body, "Stats")
    left_out = body.pop("faces_left_out")  # checked apart: only a choice of faces leaves any out
    assert left_out == 0 or "min_face_px" in query or "uncertain" in query
    return counts_only(body)


def test_stats_totals_and_shares(client: FlaskClient, seeded: StatsData) -> None:
    body = get_stats(client)

    assert body == {
        **block(4, 3, 6, happy=3, sad=1, neutral=1, angry=1),
        "by_platform": {"facebook": FACEBOOK, "instagram": INSTAGRAM, "twitter": TWITTER},
    }
    assert body["emotions"]["happy"]["share"] == 0.5
    assert body["by_platform"]["facebook"]["emotions"]["sad"]["share"] == pytest.approx(1 / 3)
    assert list(body["emotions"]) == list(EMOTIONS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("platform=facebook", {**FACEBOOK, "by_platform": {"facebook": FACEBOOK}}),
        ("platform=other", {**block(0, 0, 0), "by_platform": {}}),
        ("batch_id={b}", {**TWITTER, "by_platform": {"twitter": TWITTER}}),
        ("batch_id=999999", {**block(0, 0, 0), "by_platform": {}}),
        # since is inclusive: the face-less facebook image finished exactly at T0
        (
            "since=2025-03-01T12:00:00Z",
            {
                **block(3, 2, 3, neutral=1, angry=1, happy=1),
                "by_platform": {"facebook": block(1, 0, 0), "instagram": INSTAGRAM, "twitter": TWITTER},
            },
        ),
        # the same instant written with another offset
        (
            "since=2025-03-01T13:00:00%2B01:00",
            {
                **block(3, 2, 3, neutral=1, angry=1, happy=1),
                "by_platform": {"facebook": block(1, 0, 0), "instagram": INSTAGRAM, "twitter": TWITTER},
            },
        ),
        # until is exclusive (the image finished at T0 is out), and naive means UTC
        (
            "until=2025-03-01T12:00:00",
            {**block(1, 1, 3, happy=2, sad=1), "by_platform": {"facebook": block(1, 1, 3, happy=2, sad=1)}},
        ),
        (
            "since=2025-03-01&until=2025-03-02",
            {**block(2, 1, 1, neutral=1), "by_platform": {"facebook": block(1, 0, 0), "instagram": INSTAGRAM}},
        ),
        (
            "platform=twitter&since=2025-03-01&until=2025-03-02",
            {**block(0, 0, 0), "by_platform": {}},
        ),
    ],
)
def test_stats_filters(client: FlaskClient, seeded: StatsData, query: str, expected: dict[str, Any]) -> None:
    assert get_stats(client, query.format(b=seeded.batch_b)) == expected


# --- query parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/batches?limit=0", "limit"),
        ("/api/v1/batches?limit=ten", "limit"),
        ("/api/v1/batches?limit=-5", "limit"),
        ("/api/v1/batches/1/images?page=0", "page"),
        ("/api/v1/batches/1/images?per_page=1.5", "per_page"),
        ("/api/v1/batches/1/images?status=finished", "status"),
        ("/api/v1/faces?platform=myspace", "platform"),
        ("/api/v1/faces?emotion=joy", "emotion"),
        ("/api/v1/faces?cursor=abc", "cursor"),
        ("/api/v1/faces?cursor=99999999999", "cursor"),
        ("/api/v1/faces?batch_id=x", "batch_id"),
        ("/api/v1/faces?since=yesterday", "since"),
        ("/api/v1/stats?until=2025-13-01", "until"),
        ("/api/v1/stats?since=2025-03-01T12:00:00 0100x", "since"),
        ("/api/v1/stats?since=2025-02-30", "since"),
        ("/api/v1/stats?platform=Facebook", "platform"),
    ],
)
def test_bad_query_parameters_are_400(client: FlaskClient, path: str, parameter: str) -> None:
    submit(client, 1)  # batch 1 exists, so /batches/1/images fails on the parameter, not the batch
    assert_error(client.get(path), 400, "invalid_parameter", f"{parameter}:")


def test_empty_parameters_mean_absent(client: FlaskClient, seeded: StatsData) -> None:
    assert get_stats(client, "platform=&since=&until=&batch_id=") == get_stats(client)
    assert face_ids(client, "emotion=&cursor=&limit=") == face_ids(client, "")


# --- errors, health, documentation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/batches/999",
        "/api/v1/batches/999/images",
        "/api/v1/images/999",
        "/api/v1/batches/99999999999",
        "/api/v1/batches/0",
        "/api/v1/batches/abc",
        "/api/v2/anything",
    ],
)
def test_unknown_things_are_404_json(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.delete("/api/v1/batches")

    assert_error(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["Allow"].split(",")}


def test_unexpected_errors_are_500_without_details(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings)
    monkeypatch.setitem(ACCESS, "boom", PUBLIC)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    response = app.test_client().get("/boom")

    assert_error(response, 500, "internal_error", "internal server error")
    assert "secret" not in response.get_data(as_text=True)
    app.extensions["db"].dispose()


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_reports_a_dead_database(make_client: ClientFactory) -> None:
    client = make_client(database_url="postgresql+psycopg://postgres@127.0.0.1:1/nothing")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "error", "broker": "ok"}


def openapi_path(rule: str) -> str:
    """Flask `<id:batch_id>` -> OpenAPI `{batch_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_lists_every_route_and_method(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document == OPENAPI
    assert document["openapi"].startswith("3.1")

    routes: dict[str, set[str]] = {}
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint.rpartition(".")[2] != "static":  # the app's and Swagger UI's static files
            routes.setdefault(openapi_path(rule.rule), set()).update(rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: {method.upper() for method in item} for path, item in document["paths"].items()}
    assert documented == {path: methods for path, methods in routes.items()}

    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            parameters = [resolve(p["$ref"], OPENAPI) if "$ref" in p else p for p in operation.get("parameters", [])]
            assert {p["name"] for p in parameters if p["in"] == "path"} == names, path


def test_openapi_refs_resolve() -> None:
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(OPENAPI))
    assert len(refs) > 20
    for ref in refs:
        assert isinstance(resolve(ref, OPENAPI), dict), ref


def test_error_responses_match_the_documented_shape(client: FlaskClient) -> None:
    for response in (client.get("/api/v1/images/1"), client.post("/api/v1/batches", json={})):
        conforms(response.get_json(), "Error")
    conforms(client.get("/healthz").get_json(), "Health")


# --- the embedded default: SQLite and the filesystem broker ----------------------------------------


def test_submit_and_stats_on_sqlite_with_filesystem_broker(tmp_path: Path, sqlite_url: str) -> None:
    """The same flow on the embedded default, where datetimes come back naive and compare as strings."""
    settings = load_settings().with_changes(
        database_url=sqlite_url, broker_url="filesystem://", data_dir=tmp_path, api_keys=()
    )
    app = create_app(settings)
    client = app.test_client()
    database: Database = app.extensions["db"]

    response = client.post("/api/v1/batches", json={"urls": URLS[:3]})

    assert response.status_code == 202
    batch_id = response.get_json()["id"]
    assert len(list((settings.broker_dir / "queue").glob("*.msg"))) == 3
    outcomes = [(DONE, T0, ("happy", "fear")), (DONE, T0 + timedelta(hours=1), ()), (FAILED, T0, ())]
    with database.session() as session:
        images = session.scalars(select(Image).order_by(Image.id)).all()
        assert [(image.platform, image.status) for image in images] == [
            ("facebook", QUEUED),
            ("instagram", QUEUED),
            ("twitter", QUEUED),
        ]
        for image, (status, finished_at, found) in zip(images, outcomes, strict=True):
            image.status, image.finished_at = status, finished_at
            image.face_count = len(found) if status == DONE else None
            add_faces(session, image, found)

    batch = client.get(f"/api/v1/batches/{batch_id}").get_json()
    assert (batch["done"], batch["failed"], batch["faces"], batch["status"]) == (2, 1, 2, "done")
    assert batch["created_at"].endswith("Z")
    facebook, instagram = block(1, 1, 2, happy=1, fear=1), block(1, 0, 0)
    assert get_stats(client) == {
        **block(2, 1, 2, happy=1, fear=1),
        "by_platform": {"facebook": facebook, "instagram": instagram},
    }
    assert get_stats(client, "since=2025-03-01T12:00:00Z&until=2025-03-01T13:00:00") == {
        **facebook,
        "by_platform": {"facebook": facebook},
    }
    # 13:30+01:00 is 12:30 UTC: only the instagram image (13:00 UTC) is after it
    assert get_stats(client, "since=2025-03-01T13:30:00%2B01:00") == {
        **instagram,
        "by_platform": {"instagram": instagram},
    }
    faces = client.get("/api/v1/faces?emotion=fear").get_json()["items"]
    assert [(face["emotion"], face["analyzed_at"]) for face in faces] == [("fear", "2025-03-01T12:00:00Z")]
    database.dispose()


# --- import hygiene -------------------------------------------------------------------------------


def test_api_never_imports_tensorflow_or_worker_code(tmp_path: Path) -> None:
    """The API process must stay light: publishing by task name needs only workers.celery_app.

    Runs in a fresh interpreter on the embedded default (environment-only settings).
    """
    script = """
import sys
from db.migrate import upgrade
from core.settings import load_settings
from api import create_app
upgrade(load_settings().database_url)
client = create_app().test_client()
assert client.post("/api/v1/batches", json={"urls": ["https://x.com/a.jpg"]}).status_code == 202
assert client.get("/api/v1/stats").status_code == 200
forbidden = ("workers.tasks", "workers.pipeline", "models.classifier", "models.analyzer")
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras") or name in forbidden))
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCIALFER_")}
    env["SOCIALFER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "socialfer.db").exists()
    assert len(list((tmp_path / "broker" / "queue").glob("*.msg"))) == 1


# --- the pages: shells whose scripts read the API -------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/images/1"])
def test_pages_load_only_this_servers_assets(client: FlaskClient, path: str) -> None:
    """No CDN: every script and stylesheet the pages name is served here (the browser tests draw them)."""
    page = client.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert {"/static/common.js", "/static/style.css"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    assert not re.search(r'(?:src|href|action)="(?:https?:)?//', html)
    config = json.loads(re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)[1])
    assert config["emotions"] == list(EMOTIONS) and config["platforms"] == list(PLATFORMS)


@pytest.mark.parametrize(
    "route",
    ["/api/v1/stats", "/api/v1/timeline", "/api/v1/faces", "/api/v1/images", "/api/v1/batches", "/api/v1/queue"],
)
@pytest.mark.parametrize("query", ["since=0001-01-01T00:00:00%2B05:00", "until=9999-12-31T23:59:59-05:00"])
def test_dates_outside_the_range_once_in_utc_are_a_400(make_client: ClientFactory, route: str, query: str) -> None:
    response = make_client().get(f"{route}?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter" and "outside the range of dates" in error["message"]


def test_api_docs_are_served_from_this_server(client: FlaskClient) -> None:
    """Swagger UI at /api/docs: its scripts and styles come from the installed package, via this server."""
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert {"/api/docs/assets/js/swagger-ui-bundle.js", "/api/docs/assets/css/swagger-ui.css"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert len(client.get("/api/docs/assets/js/swagger-ui-bundle.js").data) > 100_000  # the real bundle
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert 'data-document="/api/v1/openapi.json"' in html


def test_validation_failures_answer_the_fields_code() -> None:
    """The code comes from the failing field (or the model), the message names the field."""

    def first_error(model: Any, data: Any) -> tuple[str, str]:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        return error_for(caught.value)

    app = create_app(load_settings().with_changes(database_url="sqlite://", broker_url="memory://", max_batch_urls=2))
    with app.app_context():
        assert first_error(FaceListQuery, {"limit": "0"}) == (
            "invalid_parameter",
            "limit: must be an integer from 1 to 2147483647",
        )
        assert first_error(FaceListQuery, {"emotion": "joy", "limit": "x"})[1].startswith("emotion: must be one of")
        assert first_error(BatchCreate, {}) == ("invalid_urls", "urls: required")
        assert first_error(BatchCreate, "urls")[0] == "invalid_json"
        assert first_error(BatchCreate, {"urls": ["https://a.com/"] * 3})[1] == "urls: must hold 1 to 2 URLs, got 3"
        assert first_error(BatchCreate, {"urls": ["https://a.com/", "ftp://b"]}) == (
            "invalid_url",
            "urls[1]: scheme must be http or https",
        )
        assert first_error(BatchCreate, {"urls": ["https://a.com/"], "platform": "x"})[0] == "invalid_platform"
    app.extensions["db"].dispose()


def test_stats_choose_faces_by_size_and_certainty(client: FlaskClient, seeded: StatsData, pg_database) -> None:
    """Small and uncertain faces are counted apart, and `min_face_px`/`uncertain` leave them out of every number."""
    from sqlalchemy import update

    from db import Face

    with pg_database.session() as session:
        first, second = seeded.face_ids[:2]
        session.execute(update(Face).where(Face.id == first).values(size_px=20, low_resolution=True))
        session.execute(update(Face).where(Face.id == second).values(uncertain=True))
    everything = client.get("/api/v1/stats").get_json()
    assert (everything["faces"], everything["uncertain"], everything["low_resolution"]) == (6, 1, 1)
    for query, left_out in [
        ("min_face_px=28", 1),
        ("uncertain=exclude", 1),
        ("uncertain=only", 5),
        ("min_face_px=28&uncertain=exclude", 2),
    ]:
        body = client.get(f"/api/v1/stats?{query}").get_json()
        conforms(body, "Stats")
        assert (body["faces"], body["faces_left_out"]) == (6 - left_out, left_out), query
        assert sum(e["count"] for e in body["emotions"].values()) == body["faces"]
        timeline = client.get(f"/api/v1/timeline?{query}").get_json()
        assert sum(item["faces"] for item in timeline["items"]) == body["faces"], query
        listed = client.get(f"/api/v1/faces?{query}&limit=100").get_json()["items"]
        assert len(listed) == body["faces"], query
        exported = client.get(f"/api/v1/faces/export?{query}&format=json").get_json()
        assert len(exported) == body["faces"], query
    assert client.get("/api/v1/stats?uncertain=maybe").status_code == 400
    assert client.get("/api/v1/stats?min_face_px=-3").status_code == 400
