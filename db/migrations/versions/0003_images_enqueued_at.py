"""images.enqueued_at: when an image's task was last published (for the sweeper)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 15:52:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE images SET enqueued_at = created_at")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.alter_column("enqueued_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_images_status_enqueued", ["status", "enqueued_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_status_enqueued")
        batch_op.drop_column("enqueued_at")
