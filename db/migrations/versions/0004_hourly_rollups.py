"""hourly rollups: image_hours and face_hours, kept exact by triggers

Counting a million faces takes hundreds of milliseconds even from a covering index, so
/stats and /timeline read per-hour counts instead. Triggers on images and faces maintain
them in the same transaction as every insert, update, delete and truncate, whoever writes
(the worker, the sweeper, the API, a COPY, a test), so the counts always equal the rows.

Postgres: statement-level triggers with transition tables, one grouped upsert per
statement, applied in key order so concurrent workers take the row locks in one order.
SQLite: row-level triggers (it has no others).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # face_hours: a count column each
NO_FINISH_HOUR = "1970-01-01 00:00:00+00"  # db.schema.NO_FINISH_HOUR: a done image without finished_at
PG_HOUR = "date_trunc('hour', {0} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): hours must compare equal to that.
SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {0})"
SQLITE_NO_FINISH_HOUR = "1970-01-01 00:00:00.000000"

# Postgres: the rows a statement added count +1, the rows it removed -1.
PG_IMAGE_DELTA = f"""
    SELECT COALESCE({PG_HOUR.format("finished_at")}, '{NO_FINISH_HOUR}') AS hour, platform,
           {{sign}} AS images, {{sign}} * (CASE WHEN face_count > 0 THEN 1 ELSE 0 END) AS images_with_faces
    FROM {{rows}} WHERE status = 'done'"""
PG_FACE_DELTA = f"""
    SELECT {PG_HOUR.format("analyzed_at")} AS hour, platform,
           {", ".join(f"{{sign}} * (CASE WHEN emotion = '{e}' THEN 1 ELSE 0 END) AS {e}" for e in EMOTIONS)}, id
    FROM {{rows}}"""
PG_IMAGE_UPSERT = """
    INSERT INTO image_hours AS t (hour, platform, images, images_with_faces)
    SELECT hour, platform, sum(images), sum(images_with_faces) FROM ({deltas}) AS d
    GROUP BY hour, platform
    HAVING sum(images) <> 0 OR sum(images_with_faces) <> 0
    ORDER BY hour, platform
    ON CONFLICT (hour, platform) DO UPDATE
    SET images = t.images + excluded.images, images_with_faces = t.images_with_faces + excluded.images_with_faces"""
# Bounds take every id the statement touched: they may only ever widen.
PG_FACE_UPSERT = f"""
    INSERT INTO face_hours AS t (hour, platform, {", ".join(EMOTIONS)}, min_face_id, max_face_id)
    SELECT hour, platform, {", ".join(f"sum({e})" for e in EMOTIONS)}, min(id), max(id) FROM ({{deltas}}) AS d
    GROUP BY hour, platform
    ORDER BY hour, platform
    ON CONFLICT (hour, platform) DO UPDATE
    SET {", ".join(f"{e} = t.{e} + excluded.{e}" for e in EMOTIONS)},
        min_face_id = LEAST(t.min_face_id, excluded.min_face_id),
        max_face_id = GREATEST(t.max_face_id, excluded.max_face_id)"""


def pg_function(name: str, upsert: str, delta: str) -> str:
    """A trigger function for INSERT, UPDATE and DELETE statements: one grouped upsert of their delta."""
    added, removed = delta.format(sign=1, rows="new_rows"), delta.format(sign=-1, rows="old_rows")
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{upsert.format(deltas=added)};
    ELSIF TG_OP = 'DELETE' THEN{upsert.format(deltas=removed)};
    ELSE{upsert.format(deltas=added + " UNION ALL" + removed)};
    END IF;
    RETURN NULL;
END $$"""


def pg_triggers(table: str, rollup: str) -> list[str]:
    function = f"{rollup}_count"
    return [
        f"CREATE TRIGGER {rollup}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {rollup}_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
        f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {rollup}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE OR REPLACE FUNCTION {rollup}_clear() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN DELETE FROM {rollup}; RETURN NULL; END $$",
        f"CREATE TRIGGER {rollup}_truncate AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {rollup}_clear()",
    ]


def sqlite_image_hour(row: str) -> str:
    return f"COALESCE({SQLITE_HOUR.format(row + '.finished_at')}, '{SQLITE_NO_FINISH_HOUR}')"


def sqlite_image_add(row: str) -> str:
    return f"""INSERT INTO image_hours (hour, platform, images, images_with_faces)
        VALUES ({sqlite_image_hour(row)}, {row}.platform, 1, CASE WHEN {row}.face_count > 0 THEN 1 ELSE 0 END)
        ON CONFLICT (hour, platform) DO UPDATE
        SET images = images + 1, images_with_faces = images_with_faces + excluded.images_with_faces;"""


def sqlite_image_remove(row: str) -> str:
    return f"""UPDATE image_hours SET images = images - 1,
            images_with_faces = images_with_faces - (CASE WHEN {row}.face_count > 0 THEN 1 ELSE 0 END)
        WHERE hour = {sqlite_image_hour(row)} AND platform = {row}.platform;"""


def sqlite_emotion_counts(row: str) -> str:
    return ", ".join(f"CASE WHEN {row}.emotion = '{e}' THEN 1 ELSE 0 END" for e in EMOTIONS)


def sqlite_face_add(row: str) -> str:
    hour = SQLITE_HOUR.format(row + ".analyzed_at")
    return f"""INSERT INTO face_hours (hour, platform, {", ".join(EMOTIONS)}, min_face_id, max_face_id)
        VALUES ({hour}, {row}.platform, {sqlite_emotion_counts(row)}, {row}.id, {row}.id)
        ON CONFLICT (hour, platform) DO UPDATE
        SET {", ".join(f"{e} = {e} + excluded.{e}" for e in EMOTIONS)},
            min_face_id = min(min_face_id, excluded.min_face_id),
            max_face_id = max(max_face_id, excluded.max_face_id);"""


def sqlite_face_remove(row: str) -> str:
    counts = ", ".join(f"{e} = {e} - (CASE WHEN {row}.emotion = '{e}' THEN 1 ELSE 0 END)" for e in EMOTIONS)
    return f"""UPDATE face_hours SET {counts}
        WHERE hour = {SQLITE_HOUR.format(row + ".analyzed_at")} AND platform = {row}.platform;"""


SQLITE_TRIGGERS = {
    "image_hours_insert": f"AFTER INSERT ON images WHEN NEW.status = 'done' BEGIN {sqlite_image_add('NEW')} END",
    "image_hours_update_old": f"AFTER UPDATE ON images WHEN OLD.status = 'done' BEGIN {sqlite_image_remove('OLD')} END",
    "image_hours_update_new": f"AFTER UPDATE ON images WHEN NEW.status = 'done' BEGIN {sqlite_image_add('NEW')} END",
    "image_hours_delete": f"AFTER DELETE ON images WHEN OLD.status = 'done' BEGIN {sqlite_image_remove('OLD')} END",
    "face_hours_insert": f"AFTER INSERT ON faces BEGIN {sqlite_face_add('NEW')} END",
    "face_hours_update": f"AFTER UPDATE ON faces BEGIN {sqlite_face_remove('OLD')} {sqlite_face_add('NEW')} END",
    "face_hours_delete": f"AFTER DELETE ON faces BEGIN {sqlite_face_remove('OLD')} END",
}


def backfill(hour: str, no_finish_hour: str) -> list[str]:
    """The counts of the rows already there, grouped as the triggers group them."""
    return [
        f"""INSERT INTO image_hours (hour, platform, images, images_with_faces)
        SELECT COALESCE({hour.format("finished_at")}, '{no_finish_hour}') AS hour_start, platform, count(*),
               sum(CASE WHEN face_count > 0 THEN 1 ELSE 0 END)
        FROM images WHERE status = 'done' GROUP BY hour_start, platform""",
        f"""INSERT INTO face_hours (hour, platform, {", ".join(EMOTIONS)}, min_face_id, max_face_id)
        SELECT {hour.format("analyzed_at")} AS hour_start, platform,
               {", ".join(f"sum(CASE WHEN emotion = '{e}' THEN 1 ELSE 0 END)" for e in EMOTIONS)}, min(id), max(id)
        FROM faces GROUP BY hour_start, platform""",
    ]


def upgrade() -> None:
    op.create_table(
        "image_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("images_with_faces", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "platform"),
    )
    op.create_table(
        "face_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        *(sa.Column(emotion, sa.Integer(), nullable=False) for emotion in EMOTIONS),
        sa.Column("min_face_id", sa.Integer(), nullable=False),
        sa.Column("max_face_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "platform"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # No writes between the backfill and the triggers: they would be counted by neither.
        op.execute("LOCK TABLE images, faces IN SHARE MODE")
        for statement in backfill(PG_HOUR, NO_FINISH_HOUR):
            op.execute(statement)
        op.execute(pg_function("image_hours_count", PG_IMAGE_UPSERT, PG_IMAGE_DELTA))
        op.execute(pg_function("face_hours_count", PG_FACE_UPSERT, PG_FACE_DELTA))
        for statement in pg_triggers("images", "image_hours") + pg_triggers("faces", "face_hours"):
            op.execute(statement)
    else:
        for statement in backfill(SQLITE_HOUR, SQLITE_NO_FINISH_HOUR):
            op.execute(statement)
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, rollup in (("images", "image_hours"), ("faces", "face_hours")):
            for event in ("insert", "update", "delete", "truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS {rollup}_{event} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {rollup}_count()")
            op.execute(f"DROP FUNCTION IF EXISTS {rollup}_clear()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("face_hours")
    op.drop_table("image_hours")
