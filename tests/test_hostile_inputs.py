"""Inputs that once made the API answer 500 (or the wrong thing), on the real Postgres: each is now a
400 with a JSON error, and nothing is stored."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import io

import pytest
import redis
from flask.testing import FlaskClient

from db import Database
from tests.factories import jpeg_bytes
from tests.test_api import (  # noqa: F401 - fixtures
    DEAD_BROKER,
    ClientFactory,
    assert_error,
    broker,
    client,
    make_client,
    settings,
    stored,
)
from workers.celery_app import QUEUE

FILTERED_ROUTES = [
    "/api/v1/batches",
    "/api/v1/images",
    "/api/v1/faces",
    "/api/v1/faces/export",
    "/api/v1/stats",
    "/api/v1/timeline",
    "/api/v1/queue",
]
EDGE_DATES = [
    ("since", "0001-01-01T00:00:00+05:00"),  # before the first representable instant once in UTC
    ("until", "9999-12-31T23:59:59-05:00"),  # after the last one
    ("since", "0001-01-01T00:00:00.000001+00:01"),
    ("until", "9999-12-31T23:59:59.999999-00:01"),
]
DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("route", FILTERED_ROUTES)
@pytest.mark.parametrize(("name", "value"), EDGE_DATES)
def test_dates_at_the_edge_of_the_range_are_400(client: FlaskClient, route: str, name: str, value: str) -> None:
    assert_error(client.get(route, query_string={name: value}), 400, "invalid_parameter", f"{name}:")


@pytest.mark.parametrize("route", FILTERED_ROUTES)
def test_the_first_and_last_representable_instants_answer(client: FlaskClient, route: str) -> None:
    """Rounding to hours or days inside the queries must not overflow either."""
    response = client.get(route, query_string={"since": "0001-01-01", "until": "9999-12-31T23:59:59.999999Z"})
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "message_start"),
    [
        ({"urls": ["https://a.com/1.jpg"], "name": "half \ud800 pair"}, "$.name: contains a lone surrogate"),
        ({"urls": ["https://a.com/\ud800.jpg"]}, "$.urls[0]: contains a lone surrogate"),
        ({"urls": ["https://a.com/1.jpg"], "\udfff": 1}, "$: a key contains a lone surrogate"),
    ],
)
def test_text_no_database_can_store_is_400(
    client: FlaskClient, pg_database: Database, broker: redis.Redis, body: dict, message_start: str
) -> None:
    assert_error(client.post("/api/v1/batches", json=body), 400, "invalid_json", message_start)
    assert stored(pg_database) == (0, 0) and broker.llen(QUEUE) == 0


@pytest.mark.parametrize(
    ("body", "code", "message_start"),
    [
        ({"urls": ["https://a.com/1.jpg"], "name": "bad\u0000name"}, "invalid_name", "name: must not contain NUL"),
        ({"urls": ["https://a.com/\u0000.jpg"]}, "invalid_url", "urls[0]: contains whitespace or control"),
    ],
)
def test_nul_in_a_stored_field_is_400(
    client: FlaskClient, pg_database: Database, body: dict, code: str, message_start: str
) -> None:
    assert_error(client.post("/api/v1/batches", json=body), 400, code, message_start)
    assert stored(pg_database) == (0, 0)


def test_nul_in_an_unknown_field_is_ignored_like_the_field(client: FlaskClient, pg_database: Database) -> None:
    assert client.post("/api/v1/batches", json={"urls": ["https://a.com/1.jpg"], "note": "\u0000"}).status_code == 202


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_400(client: FlaskClient, pg_database: Database, depth: int) -> None:
    body = '{"urls": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/api/v1/batches", data=body, content_type="application/json")
    assert_error(response, 400, "invalid_json", "")
    assert "nested deeper than 32 levels" in response.get_json()["error"]["message"]
    assert stored(pg_database) == (0, 0)


def test_an_upload_name_with_nul_is_400(client: FlaskClient, pg_database: Database) -> None:
    data = {"files": [(io.BytesIO(jpeg_bytes(20, 20)), "a.jpg")], "name": "bad\u0000name"}
    response = client.post("/api/v1/uploads", data=data, content_type="multipart/form-data")
    assert_error(response, 400, "invalid_name", "name: must not contain NUL")
    assert stored(pg_database) == (0, 0)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/batches/١", "/api/v1/batches/١/images", "/api/v1/images/٢", "/api/v1/images/٣/preview", "/images/١"],
)
def test_ids_in_non_ascii_digits_are_400_not_a_lookup(client: FlaskClient, path: str) -> None:
    client.post("/api/v1/batches", json={"urls": ["https://a.com/1.jpg"]})  # batch 1 and image 1 exist
    assert_error(client.get(path), 400, "invalid_parameter", "the id in the path")


@pytest.mark.parametrize("query", ["batch_id=١", "cursor=١", "limit=٥"])
def test_query_ids_in_non_ascii_digits_are_400(client: FlaskClient, query: str) -> None:
    assert_error(client.get(f"/api/v1/faces?{query}"), 400, "invalid_parameter")


# --- health ---------------------------------------------------------------------------------------


def test_healthz_reports_database_and_broker(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok", "database": "ok", "broker": "ok"})


def test_healthz_is_503_with_the_broker_down(make_client: ClientFactory) -> None:
    response = make_client(broker_url=DEAD_BROKER).get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok", "broker": "error"}


def test_livez_says_only_that_the_process_answers(make_client: ClientFactory) -> None:
    client = make_client(broker_url=DEAD_BROKER, database_url="postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    assert client.get("/healthz").status_code == 503
    response = client.get("/livez")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
