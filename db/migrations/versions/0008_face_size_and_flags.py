"""faces: size_px, low_resolution, uncertain; images: faces_beyond_cap, min_face_px, scan_capped; face_flag_hours

Group photos hold faces the classifier can barely read and more faces than an image
should keep, so a face now says how large it is (`size_px`, the shorter side of its box),
whether that is under the size the classifier is reliable at (`low_resolution`) and
whether the classifier abstained (`uncertain`); an image says how many faces it found
beyond the per-image cap and the smallest face size its scan looked for.

size_px is backfilled from the stored boxes and low_resolution from it, at the threshold
of the time (LOW_RESOLUTION_PX below, the setting's default when this was written).
face_flag_hours counts both flags per hour and platform with triggers of its own on faces
(face_hours' triggers of 0004 and 0007 are left as they are). They are created before the
backfill, so the backfill's own UPDATE counts the flags it sets, and every rollup stays
equal to counting the rows throughout. No table is rebuilt (SQLite would drop the triggers
with it): columns are added.

Postgres: statement-level triggers with transition tables, one grouped upsert per statement,
in key order. SQLite: row-level triggers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOW_RESOLUTION_PX = 24  # core.settings low_resolution_px's default: faces under it are flagged
FLAGS = ("uncertain", "low_resolution")
PG_HOUR = "date_trunc('hour', {0} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"  # 0004's
SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {0})"  # 0004's
EVENTS = ("insert", "update", "delete")


def flag_counts(row: str, sign: str = "") -> list[str]:
    return [f"{sign}(CASE WHEN {row}{flag} THEN 1 ELSE 0 END)" for flag in FLAGS]


def pg_function() -> str:
    def delta(sign: int, rows: str) -> str:
        counts = ", ".join(f"{c} AS {f}" for c, f in zip(flag_counts("", f"{sign} * "), FLAGS, strict=True))
        return f"SELECT {PG_HOUR.format('analyzed_at')} AS hour, platform, {counts} FROM {rows}"

    def upsert(deltas: str) -> str:
        return f"""
    INSERT INTO face_flag_hours AS t (hour, platform, {", ".join(FLAGS)})
    SELECT hour, platform, {", ".join(f"sum({f})" for f in FLAGS)} FROM ({deltas}) AS d
    GROUP BY hour, platform
    HAVING {" OR ".join(f"sum({f}) <> 0" for f in FLAGS)}
    ORDER BY hour, platform
    ON CONFLICT (hour, platform) DO UPDATE SET {", ".join(f"{f} = t.{f} + excluded.{f}" for f in FLAGS)}"""

    added, removed = delta(1, "new_rows"), delta(-1, "old_rows")
    return f"""
CREATE OR REPLACE FUNCTION face_flag_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{upsert(added)};
    ELSIF TG_OP = 'DELETE' THEN{upsert(removed)};
    ELSE{upsert(added + " UNION ALL " + removed)};
    END IF;
    RETURN NULL;
END $$"""


PG_TRIGGERS = [
    "CREATE TRIGGER face_flag_hours_insert AFTER INSERT ON faces REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION face_flag_hours_count()",
    "CREATE TRIGGER face_flag_hours_update AFTER UPDATE ON faces REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION face_flag_hours_count()",
    "CREATE TRIGGER face_flag_hours_delete AFTER DELETE ON faces REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION face_flag_hours_count()",
    "CREATE OR REPLACE FUNCTION face_flag_hours_clear() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN DELETE FROM face_flag_hours; RETURN NULL; END $$",
    "CREATE TRIGGER face_flag_hours_truncate AFTER TRUNCATE ON faces "
    "FOR EACH STATEMENT EXECUTE FUNCTION face_flag_hours_clear()",
]


def sqlite_add(row: str) -> str:
    return f"""INSERT INTO face_flag_hours (hour, platform, {", ".join(FLAGS)})
        VALUES ({SQLITE_HOUR.format(row + ".analyzed_at")}, {row}.platform, {", ".join(flag_counts(row + "."))})
        ON CONFLICT (hour, platform) DO UPDATE SET {", ".join(f"{f} = {f} + excluded.{f}" for f in FLAGS)};"""


def sqlite_remove(row: str) -> str:
    minus = ", ".join(f"{f} = {f} - {c}" for f, c in zip(FLAGS, flag_counts(row + "."), strict=True))
    return f"""UPDATE face_flag_hours SET {minus}
        WHERE hour = {SQLITE_HOUR.format(row + ".analyzed_at")} AND platform = {row}.platform;"""


SQLITE_TRIGGERS = {
    "face_flag_hours_insert": f"AFTER INSERT ON faces BEGIN {sqlite_add('NEW')} END",
    "face_flag_hours_update": f"AFTER UPDATE ON faces BEGIN {sqlite_remove('OLD')} {sqlite_add('NEW')} END",
    "face_flag_hours_delete": f"AFTER DELETE ON faces BEGIN {sqlite_remove('OLD')} END",
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # no writes between the new columns, the new triggers and the backfill
        op.execute("LOCK TABLE images, faces IN SHARE ROW EXCLUSIVE MODE")
    op.add_column("faces", sa.Column("size_px", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("faces", sa.Column("low_resolution", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("faces", sa.Column("uncertain", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("images", sa.Column("faces_beyond_cap", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("images", sa.Column("min_face_px", sa.Integer(), nullable=True))
    op.add_column("images", sa.Column("scan_capped", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(  # every stored face has both flags false now: an empty table is their exact count
        "face_flag_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        *(sa.Column(flag, sa.Integer(), nullable=False) for flag in FLAGS),
        sa.PrimaryKeyConstraint("hour", "platform"),
    )
    if postgres:
        op.execute(pg_function())
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    shorter = "CASE WHEN w < h THEN w ELSE h END"
    op.execute(f"UPDATE faces SET size_px = {shorter}, low_resolution = ({shorter} < {LOW_RESOLUTION_PX})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in (*EVENTS, "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS face_flag_hours_{event} ON faces")
        op.execute("DROP FUNCTION IF EXISTS face_flag_hours_count()")
        op.execute("DROP FUNCTION IF EXISTS face_flag_hours_clear()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("face_flag_hours")
    for column in ("scan_capped", "min_face_px", "faces_beyond_cap"):
        op.drop_column("images", column)
    for column in ("uncertain", "low_resolution", "size_px"):
        op.drop_column("faces", column)
