"""Schemathesis generates requests for every operation in the served (generated) OpenAPI document
and sends them to the app (WSGI) on the real Postgres and Redis: no answer may be a 5xx, and every
answer must be one the document describes. Bounded: a fixed number of examples per operation, derandomised."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select

from api import create_app
from core.settings import Settings
from core.vocabulary import DONE
from db import Database, Image
from tests.factories import add_preview, seed_stats
from tests.test_api import OPENAPI, broker, settings  # noqa: F401 - fixtures

EXAMPLES_PER_OPERATION = 60
# What a schema cannot say: an upload must start with an image signature, so schema-valid
# random bytes are rightly refused (400 invalid_file) rather than accepted.
UNSAYABLE = {("POST", "/api/v1/uploads"): [positive_data_acceptance]}
OPERATIONS = [(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item]


@pytest.fixture
def api_schema(settings: Settings, pg_database: Database) -> Iterator[Any]:
    """The served document, over seeded data so that ids 1, 2, ... exist and lists are not empty."""
    with pg_database.session() as session:
        seed_stats(session)
        add_preview(session, session.scalars(select(Image).where(Image.status == DONE).limit(1)).one())
    app = create_app(settings)
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    app.extensions["db"].dispose()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{method} {path}" for method, path in OPERATIONS])
def test_every_operation_answers_as_documented(api_schema: Any, method: str, path: str) -> None:
    """One pytest item per operation (schemathesis' own pytest integration does not run on pytest 9)."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(excluded_checks=UNSAYABLE.get((method, path), []))

    answers_as_documented()


# Inputs that once answered 500 (or the wrong thing), sent through schemathesis as explicit examples:
# each must be a documented 400, never a 5xx.
FILTERED = ["/api/v1/batches", "/api/v1/images", "/api/v1/faces", "/api/v1/faces/export", "/api/v1/stats"]
FILTERED += ["/api/v1/timeline", "/api/v1/queue"]
URL = "https://pbs.twimg.com/media/a.jpg"
HOSTILE_EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    *(("GET", path, {"query": {"since": "0001-01-01T00:00:00+05:00"}}) for path in FILTERED),
    *(("GET", path, {"query": {"until": "9999-12-31T23:59:59-05:00"}}) for path in FILTERED),
    ("POST", "/api/v1/batches", {"body": {"urls": [URL], "name": "nul\u0000name"}, "media_type": "application/json"}),
    ("POST", "/api/v1/batches", {"body": {"urls": [URL], "name": "\ud800"}, "media_type": "application/json"}),
    ("POST", "/api/v1/batches", {"body": {"urls": [URL + "\ud800"]}, "media_type": "application/json"}),
    ("POST", "/api/v1/batches", {"body": ("[" * 100_000 + "]" * 100_000).encode(), "media_type": "application/json"}),
    ("GET", "/api/v1/batches/{batch_id}", {"path_parameters": {"batch_id": "١"}}),
    ("GET", "/api/v1/batches/{batch_id}/images", {"path_parameters": {"batch_id": "١"}}),
    ("GET", "/api/v1/images/{image_id}", {"path_parameters": {"image_id": "١"}}),
    ("GET", "/api/v1/images/{image_id}/preview", {"path_parameters": {"image_id": "١"}}),
    ("GET", "/api/v1/faces", {"query": {"batch_id": "١"}}),
]


@pytest.mark.parametrize(
    ("method", "path", "parts"), HOSTILE_EXAMPLES, ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(HOSTILE_EXAMPLES)]
)
def test_hostile_examples_are_documented_400s(
    settings: Settings, pg_database: Database, method: str, path: str, parts: dict[str, Any]
) -> None:
    # Their own app, with writes unthrottled: the rate limit's counters (in Redis) outlive each test's app.
    app = create_app(settings.with_changes(write_rate_limit="100000/minute"))
    case = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method].Case(**parts)
    # Most are schema-valid strings (a date-time, a name) that the API rightly refuses: skip that one check.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    app.extensions["db"].dispose()
    assert response.status_code == 400, response.text
