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
