"""faces: size_px, low_resolution, uncertain; images: faces_beyond_cap, min_face_px, scan_capped

Group photos hold faces the classifier can barely read and more faces than an image
should keep, so a face now says how large it is (`size_px`, the shorter side of its box),
whether that is under the size the classifier is reliable at (`low_resolution`) and
whether the classifier abstained (`uncertain`); an image says how many faces it found
beyond the per-image cap and the smallest face size its scan looked for.

size_px is backfilled from the stored boxes and low_resolution from it, at the threshold
of the time (LOW_RESOLUTION_PX below, the setting's default when this was written).
face_hours gains a count of each flag, kept by the same triggers as the emotion counts:
the trigger functions are replaced before the backfill, so the backfill's own UPDATE
counts the flags it sets, and the rollups stay equal to counting the rows throughout.
No table is rebuilt (SQLite would drop the 0004 triggers with it): columns are added.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOW_RESOLUTION_PX = 28  # core.settings low_resolution_px's default: faces under it are flagged
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FLAGS = ("uncertain", "low_resolution")  # face_hours: a count column each, beside the emotions
PG_HOUR = "date_trunc('hour', {0} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {0})"


def counts_of(row: str, flags: Sequence[str], sign: str = "") -> list[str]:
    """One 0/1 (times `sign`) per emotion, then per flag, for a faces row."""
    emotions = [f"{sign}(CASE WHEN {row}emotion = '{e}' THEN 1 ELSE 0 END)" for e in EMOTIONS]
    return emotions + [f"{sign}(CASE WHEN {row}{flag} THEN 1 ELSE 0 END)" for flag in flags]


def pg_face_function(flags: Sequence[str]) -> str:
    """face_hours_count() of 0004, counting `flags` too: one grouped upsert per statement."""
    columns = [*EMOTIONS, *flags]

    def delta(sign: int, rows: str) -> str:
        signed = counts_of("", flags, f"{sign} * ")
        counts = ", ".join(f"{c} AS {name}" for c, name in zip(signed, columns, strict=True))
        return f"SELECT {PG_HOUR.format('analyzed_at')} AS hour, platform, {counts}, id FROM {rows}"

    def upsert(deltas: str) -> str:
        return f"""
    INSERT INTO face_hours AS t (hour, platform, {", ".join(columns)}, min_face_id, max_face_id)
    SELECT hour, platform, {", ".join(f"sum({c})" for c in columns)}, min(id), max(id) FROM ({deltas}) AS d
    GROUP BY hour, platform
    ORDER BY hour, platform
    ON CONFLICT (hour, platform) DO UPDATE
    SET {", ".join(f"{c} = t.{c} + excluded.{c}" for c in columns)},
        min_face_id = LEAST(t.min_face_id, excluded.min_face_id),
        max_face_id = GREATEST(t.max_face_id, excluded.max_face_id)"""

    added, removed = delta(1, "new_rows"), delta(-1, "old_rows")
    return f"""
CREATE OR REPLACE FUNCTION face_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{upsert(added)};
    ELSIF TG_OP = 'DELETE' THEN{upsert(removed)};
    ELSE{upsert(added + " UNION ALL " + removed)};
    END IF;
    RETURN NULL;
END $$"""


def sqlite_face_triggers(flags: Sequence[str]) -> dict[str, str]:
    """0004's row triggers on faces, counting `flags` too."""
    columns = [*EMOTIONS, *flags]
    hour = SQLITE_HOUR

    def add(row: str) -> str:
        return f"""INSERT INTO face_hours (hour, platform, {", ".join(columns)}, min_face_id, max_face_id)
        VALUES ({hour.format(row + ".analyzed_at")}, {row}.platform, {", ".join(counts_of(row + ".", flags))},
                {row}.id, {row}.id)
        ON CONFLICT (hour, platform) DO UPDATE
        SET {", ".join(f"{c} = {c} + excluded.{c}" for c in columns)},
            min_face_id = min(min_face_id, excluded.min_face_id),
            max_face_id = max(max_face_id, excluded.max_face_id);"""

    def remove(row: str) -> str:
        minus = ", ".join(f"{c} = {c} - {v}" for c, v in zip(columns, counts_of(row + ".", flags), strict=True))
        return f"""UPDATE face_hours SET {minus}
        WHERE hour = {hour.format(row + ".analyzed_at")} AND platform = {row}.platform;"""

    return {
        "face_hours_insert": f"AFTER INSERT ON faces BEGIN {add('NEW')} END",
        "face_hours_update": f"AFTER UPDATE ON faces BEGIN {remove('OLD')} {add('NEW')} END",
        "face_hours_delete": f"AFTER DELETE ON faces BEGIN {remove('OLD')} END",
    }


def count_faces_with(flags: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_face_function(flags))
        return
    for name, body in sqlite_face_triggers(flags).items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")


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
    for flag in FLAGS:  # every stored face has both flags false: zero is their exact count
        op.add_column("face_hours", sa.Column(flag, sa.Integer(), nullable=False, server_default="0"))
    count_faces_with(FLAGS)
    shorter = "CASE WHEN w < h THEN w ELSE h END"
    op.execute(f"UPDATE faces SET size_px = {shorter}, low_resolution = ({shorter} < {LOW_RESOLUTION_PX})")


def downgrade() -> None:
    count_faces_with(())
    for flag in FLAGS:
        op.drop_column("face_hours", flag)
    for column in ("scan_capped", "min_face_px", "faces_beyond_cap"):
        op.drop_column("images", column)
    for column in ("uncertain", "low_resolution", "size_px"):
        op.drop_column("faces", column)
