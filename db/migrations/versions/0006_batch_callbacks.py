"""batches.callback_*: the signed batch-end callback and its delivery state

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


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("callback_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("callback_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("callback_last_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("callback_last_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("callback_ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("callback_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_batches_callback_state"), ["callback_state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_callback_state"))
        for column in ("due_at", "ended_at", "last_error", "last_status", "attempts", "state", "url"):
            batch_op.drop_column(f"callback_{column}")
