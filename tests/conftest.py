"""Shared fixtures: the machine's real Postgres and Redis, and the shared data.

Under CI=true a missing service or data file is an error, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db import Base, Database
from db.migrate import upgrade

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SOCIALFER_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("SOCIALFER_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = os.environ.get("SOCIALFER_TEST_PG_DB", "socialfer_test")
REDIS_URL = os.environ.get("SOCIALFER_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str) -> None:
    """Skip locally, fail under CI: CI must exercise the real parts."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} not available")


def pg_test_url() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a freshly migrated `socialfer_test` database (created if missing)."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_TEST_DB}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{PG_TEST_DB}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no Postgres"
        unavailable(f"Postgres at {PG_ADMIN_URL} ({exc.__class__.__name__})")
    url = pg_test_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    upgrade(url)
    return url


def truncate_all(database: Database) -> None:
    with database.session() as session:
        if database.url.startswith("postgresql"):
            session.execute(text("TRUNCATE faces, images, batches, api_keys, audit_log RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    """The Postgres test database, emptied before each test."""
    database = Database(pg_url)
    truncate_all(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'socialfer.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
        client.close()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL} ({exc.__class__.__name__})")
    return REDIS_URL


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fer2013.npz").exists():
        unavailable(f"shared data at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(params=["postgres", "sqlite"])
def any_database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The Postgres test database (emptied) and a fresh SQLite file: the rollups' triggers differ per dialect."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg_database")
        return
    database = Database(request.getfixturevalue("sqlite_url"))
    yield database
    database.dispose()
