"""Alembic owns the schema: the migrations must produce exactly what the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, text

from core.filters import Filters
from core.vocabulary import DONE, FAILED
from db import Batch, Database, Face, Image
from db.migrate import alembic_config, upgrade
from db.queries import stats
from db.schema import Base
from tests.conftest import PG_ADMIN_URL, PG_TEST_DB
from tests.factories import T0, add_faces, scores_for
from tests.test_queries import assert_rollups_match


def schema_drift(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return drift


def test_postgres_schema_matches_the_models(pg_url: str) -> None:
    assert schema_drift(pg_url) == []


def test_sqlite_migrations_go_down_and_up_again(sqlite_url: str) -> None:
    command.downgrade(alembic_config(sqlite_url), "base")
    command.upgrade(alembic_config(sqlite_url), "head")
    assert schema_drift(sqlite_url) == []


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A database of its own, dropped after: migrating down and up must not disturb the shared one."""
    name = f"{PG_TEST_DB}_migrations"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_rollups_count_the_rows_already_there(request: pytest.FixtureRequest, dialect: str) -> None:
    """0004 on a database with data: the rollups start from the existing rows, then follow new writes."""
    url = request.getfixturevalue("empty_pg_url" if dialect == "postgres" else "sqlite_url")
    if dialect == "sqlite":
        command.downgrade(alembic_config(url), "0003")
    else:
        upgrade(url, "0003")
    database = Database(url)
    with database.session() as session:
        batch_id = session.scalars(insert(Batch).returning(Batch.id), [{"total": 4, "created_at": T0}]).one()
        rows = [
            image_row(batch_id, "twitter", DONE, T0 + timedelta(minutes=5), 2),
            image_row(batch_id, "twitter", DONE, T0 + timedelta(minutes=55), 0),
            image_row(batch_id, "facebook", DONE, None, 0),  # done without a finish time: counted when unfiltered
            image_row(batch_id, "facebook", FAILED, T0, None),
        ]
        first, second, *_ = session.scalars(insert(Image).returning(Image.id, sort_by_parameter_order=True), rows).all()
        session.execute(
            insert(Face),
            [face_row(first, batch_id, T0 + timedelta(minutes=5), emotion) for emotion in ("happy", "sad")],
        )
    upgrade(url)
    assert_rollups_match(database)
    with database.session() as session:
        assert (stats(session)["images"], stats(session)["images_with_faces"], stats(session)["faces"]) == (3, 1, 2)
        assert stats(session, Filters(since=T0))["images"] == 2
        add_faces(session, session.get(Image, second), ("fear",))
    assert_rollups_match(database)
    database.dispose()


def image_row(batch_id: int, platform: str, status: str, finished_at: datetime | None, faces: int | None) -> dict:
    return {
        "batch_id": batch_id,
        "url": "https://example.com/a.jpg",
        "platform": platform,
        "status": status,
        "face_count": faces,
        "attempts": 1,
        "created_at": T0,
        "enqueued_at": T0,
        "finished_at": finished_at,
    }


def face_row(image_id: int, batch_id: int, analyzed_at: datetime, emotion: str) -> dict:
    place = {"image_id": image_id, "batch_id": batch_id, "platform": "twitter", "analyzed_at": analyzed_at}
    return {**place, "x": 0, "y": 0, "w": 40, "h": 48, "confidence": 0.99, "emotion": emotion, **scores_for(emotion)}


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_pair_sums_go_down_to_0006_and_up_again(request: pytest.FixtureRequest, dialect: str) -> None:
    """0007 down: 0004's face triggers count again, without the pair sums; up: the sums are backfilled."""
    url = request.getfixturevalue("empty_pg_url" if dialect == "postgres" else "sqlite_url")
    upgrade(url)
    database = Database(url)
    with database.session() as session:
        batch_id = session.scalars(insert(Batch).returning(Batch.id), [{"total": 1, "created_at": T0}]).one()
        image_id = session.scalars(
            insert(Image).returning(Image.id), [image_row(batch_id, "twitter", DONE, T0 + timedelta(minutes=5), 3)]
        ).one()
        faces = [face_row(image_id, batch_id, T0 + timedelta(minutes=5), e) for e in ("happy", "happy", "sad")]
        session.execute(insert(Face), faces)
    assert_rollups_match(database)
    command.downgrade(alembic_config(url), "0006")
    with database.session() as session:
        session.execute(insert(Face), [face_row(image_id, batch_id, T0 + timedelta(minutes=5), "fear")])
        counts = session.execute(text("SELECT happy, sad, fear FROM face_hours")).one()
        assert tuple(counts) == (2, 1, 1)  # 0004's triggers, restored, still count
        columns = session.execute(text("SELECT * FROM face_hours LIMIT 0")).keys()
        assert not any(name.startswith("pair_") for name in columns)
    upgrade(url)
    assert_rollups_match(database)
    with database.session() as session:
        assert stats(session, with_pairs=True)["cross"][3][3] == 4  # happy x happy of one image with two happy faces
    database.dispose()
