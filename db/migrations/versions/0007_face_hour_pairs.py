"""per-image sums for clustered intervals: image_face_counts and face_hours' pair columns

A share's cluster-robust variance (analysis/clustered.py) needs, besides the counts, the sum
over images of c_e x c_f for every pair of emotions, c_e being an image's faces of emotion e.
face_hours gains those 28 sums per hour and platform, so /stats stays a read of a few
thousand rollup rows. They cannot be kept from the faces alone (a new face of an image
changes the image's products by more than its own count), so image_face_counts keeps each
image's counts per emotion (per hour and platform, as face_hours groups), and every change
there changes the sums by new x new - old x old.

Postgres: the statement-level trigger function on faces also upserts image_face_counts,
taking each new row from RETURNING (the row as updated, after waiting for any concurrent
writer of that image), so "old" is exact; then adds the pair deltas to face_hours and deletes
counts that reached zero. SQLite: row-level triggers on faces maintain image_face_counts, and
row-level triggers on image_face_counts maintain the sums.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def load_0004() -> ModuleType:
    """Migration 0004: its hour expressions and face triggers are extended here, and restored on downgrade."""
    path = Path(__file__).with_name("0004_hourly_rollups.py")
    spec = importlib.util.spec_from_file_location("socialfer_migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R0004 = load_0004()
EMOTIONS = R0004.EMOTIONS
PAIRS = [(first, second) for index, first in enumerate(EMOTIONS) for second in EMOTIONS[index:]]  # db.schema's
KEYS = "image_id, hour, platform"


def pair(first: str, second: str) -> str:
    return f"pair_{first}_{second}"


def all_zero(table: str) -> str:
    return " AND ".join(f"{table}.{e} = 0" for e in EMOTIONS)


# --- Postgres ----------------------------------------------------------------------------------

PG_COUNTS_DELTA = f"""
    SELECT image_id, {R0004.PG_HOUR.format("analyzed_at")} AS hour, platform,
           {", ".join(f"{{sign}} * (CASE WHEN emotion = '{e}' THEN 1 ELSE 0 END) AS {e}" for e in EMOTIONS)}
    FROM {{rows}}"""
# Each image's counts change by `delta`; RETURNING gives the counts after it, so before = after - delta.
PG_COUNTS_UPSERT = f"""
    WITH delta AS (
        SELECT {KEYS}, {", ".join(f"sum({e}) AS {e}" for e in EMOTIONS)} FROM ({{deltas}}) AS d
        GROUP BY {KEYS}
        HAVING {" OR ".join(f"sum({e}) <> 0" for e in EMOTIONS)}
    ), updated AS (
        INSERT INTO image_face_counts AS t ({KEYS}, {", ".join(EMOTIONS)})
        SELECT {KEYS}, {", ".join(EMOTIONS)} FROM delta ORDER BY {KEYS}
        ON CONFLICT ({KEYS}) DO UPDATE SET {", ".join(f"{e} = t.{e} + excluded.{e}" for e in EMOTIONS)}
        RETURNING t.image_id, t.hour, t.platform, {", ".join(f"t.{e}" for e in EMOTIONS)}
    ), pairs AS (
        SELECT a.hour, a.platform,
               {", ".join(f"sum(a.{x} * a.{y} - (a.{x} - d.{x}) * (a.{y} - d.{y})) AS {pair(x, y)}" for x, y in PAIRS)}
        FROM updated AS a JOIN delta AS d USING ({KEYS})
        GROUP BY a.hour, a.platform
    )
    UPDATE face_hours AS f SET {", ".join(f"{pair(x, y)} = f.{pair(x, y)} + p.{pair(x, y)}" for x, y in PAIRS)}
    FROM pairs AS p WHERE f.hour = p.hour AND f.platform = p.platform"""
PG_COUNTS_CLEANUP = f"""
    DELETE FROM image_face_counts AS t
    USING (SELECT DISTINCT image_id, {R0004.PG_HOUR.format("analyzed_at")} AS hour, platform FROM old_rows) AS k
    WHERE t.image_id = k.image_id AND t.hour = k.hour AND t.platform = k.platform AND {all_zero("t")}"""


def pg_face_function() -> str:
    """0004's face_hours_count, then the per-image counts and the pair sums, for each kind of statement."""

    def statements(rows: list[str], cleanup: bool) -> str:
        signs = {"new_rows": 1, "old_rows": -1}
        hours = " UNION ALL".join(R0004.PG_FACE_DELTA.format(sign=signs[r], rows=r) for r in rows)
        counts = " UNION ALL".join(PG_COUNTS_DELTA.format(sign=signs[r], rows=r) for r in rows)
        parts = [R0004.PG_FACE_UPSERT.format(deltas=hours), PG_COUNTS_UPSERT.format(deltas=counts)]
        return ";".join(parts + ([PG_COUNTS_CLEANUP] if cleanup else [])) + ";"

    return f"""
CREATE OR REPLACE FUNCTION face_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{statements(["new_rows"], cleanup=False)}
    ELSIF TG_OP = 'DELETE' THEN{statements(["old_rows"], cleanup=True)}
    ELSE{statements(["new_rows", "old_rows"], cleanup=True)}
    END IF;
    RETURN NULL;
END $$"""


PG_CLEAR = (
    "CREATE OR REPLACE FUNCTION face_hours_clear() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN DELETE FROM image_face_counts; DELETE FROM face_hours; RETURN NULL; END $$"
)
PG_CLEAR_0004 = (
    "CREATE OR REPLACE FUNCTION face_hours_clear() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN DELETE FROM face_hours; RETURN NULL; END $$"
)


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_counts_add(row: str) -> str:
    hour = R0004.SQLITE_HOUR.format(row + ".analyzed_at")
    return f"""INSERT INTO image_face_counts ({KEYS}, {", ".join(EMOTIONS)})
        VALUES ({row}.image_id, {hour}, {row}.platform, {R0004.sqlite_emotion_counts(row)})
        ON CONFLICT ({KEYS}) DO UPDATE SET {", ".join(f"{e} = {e} + excluded.{e}" for e in EMOTIONS)};"""


def sqlite_counts_remove(row: str) -> str:
    where = (
        f"image_id = {row}.image_id AND hour = {R0004.SQLITE_HOUR.format(row + '.analyzed_at')} "
        f"AND platform = {row}.platform"
    )
    counts = ", ".join(f"{e} = {e} - (CASE WHEN {row}.emotion = '{e}' THEN 1 ELSE 0 END)" for e in EMOTIONS)
    return f"""UPDATE image_face_counts SET {counts} WHERE {where};
        DELETE FROM image_face_counts WHERE {where} AND {all_zero("image_face_counts")};"""


def sqlite_pairs_change(added: str | None, removed: str | None) -> str:
    """face_hours' sums plus added x added minus removed x removed (rows of image_face_counts)."""
    row = added or removed

    def change(x: str, y: str) -> str:
        plus = f" + {added}.{x} * {added}.{y}" if added else ""
        minus = f" - {removed}.{x} * {removed}.{y}" if removed else ""
        return f"{pair(x, y)} = {pair(x, y)}{plus}{minus}"

    changes = ", ".join(change(x, y) for x, y in PAIRS)
    return f"UPDATE face_hours SET {changes} WHERE hour = {row}.hour AND platform = {row}.platform;"


ADD_FACE = f"{R0004.sqlite_face_add('NEW')} {sqlite_counts_add('NEW')}"
REMOVE_FACE = f"{R0004.sqlite_face_remove('OLD')} {sqlite_counts_remove('OLD')}"
SQLITE_TRIGGERS = {
    "face_hours_insert": f"AFTER INSERT ON faces BEGIN {ADD_FACE} END",
    "face_hours_update": f"AFTER UPDATE ON faces BEGIN {REMOVE_FACE} {ADD_FACE} END",
    "face_hours_delete": f"AFTER DELETE ON faces BEGIN {REMOVE_FACE} END",
    "image_face_counts_insert": f"AFTER INSERT ON image_face_counts BEGIN {sqlite_pairs_change('NEW', None)} END",
    "image_face_counts_update": f"AFTER UPDATE ON image_face_counts BEGIN {sqlite_pairs_change('NEW', 'OLD')} END",
    "image_face_counts_delete": f"AFTER DELETE ON image_face_counts BEGIN {sqlite_pairs_change(None, 'OLD')} END",
}
FACE_TRIGGERS_0004 = ("face_hours_insert", "face_hours_update", "face_hours_delete")


def backfill(hour: str) -> list[str]:
    """The per-image counts of the faces already there, then their pair sums into face_hours."""
    return [
        f"""INSERT INTO image_face_counts ({KEYS}, {", ".join(EMOTIONS)})
        SELECT image_id, {hour.format("analyzed_at")} AS hour_start, platform,
               {", ".join(f"sum(CASE WHEN emotion = '{e}' THEN 1 ELSE 0 END)" for e in EMOTIONS)}
        FROM faces GROUP BY image_id, hour_start, platform""",
        f"""UPDATE face_hours SET {", ".join(f"{pair(x, y)} = s.{pair(x, y)}" for x, y in PAIRS)}
        FROM (SELECT hour, platform, {", ".join(f"sum({x} * {y}) AS {pair(x, y)}" for x, y in PAIRS)}
              FROM image_face_counts GROUP BY hour, platform) AS s
        WHERE face_hours.hour = s.hour AND face_hours.platform = s.platform""",
    ]


def upgrade() -> None:
    for x, y in PAIRS:
        op.add_column("face_hours", sa.Column(pair(x, y), sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "image_face_counts",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        *(sa.Column(emotion, sa.Integer(), nullable=False) for emotion in EMOTIONS),
        sa.PrimaryKeyConstraint("image_id", "hour", "platform"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE faces IN SHARE MODE")  # no writes between the backfill and the new trigger body
        for statement in backfill(R0004.PG_HOUR):
            op.execute(statement)
        op.execute(pg_face_function())
        op.execute(PG_CLEAR)
    else:
        for statement in backfill(R0004.SQLITE_HOUR):
            op.execute(statement)
        for name in FACE_TRIGGERS_0004:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(R0004.pg_function("face_hours_count", R0004.PG_FACE_UPSERT, R0004.PG_FACE_DELTA))
        op.execute(PG_CLEAR_0004)
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("image_face_counts")
    with op.batch_alter_table("face_hours") as batch:  # SQLite: a copy of the table, so no trigger may name it yet
        for x, y in PAIRS:
            batch.drop_column(pair(x, y))
    if not postgres:
        for name in FACE_TRIGGERS_0004:
            op.execute(f"CREATE TRIGGER {name} {R0004.SQLITE_TRIGGERS[name]}")
