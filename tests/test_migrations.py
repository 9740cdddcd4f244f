"""Alembic owns the schema: the migrations must produce exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from db.migrate import alembic_config
from db.schema import Base


def schema_drift(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return drift


def test_postgres_schema_matches_the_models(pg_url: str) -> None:
    assert schema_drift(pg_url) == []


def test_sqlite_migrations_go_down_and_up_again(sqlite_url: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(sqlite_url), "base")
    command.upgrade(alembic_config(sqlite_url), "head")
    assert schema_drift(sqlite_url) == []
