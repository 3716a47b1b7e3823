"""detector clears: an officer's benign / false-positive verdict ends the episode

Revision ID: 0004_detector_clears
Revises: 0003_alert_holds
Create Date: 2026-11-28 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004_detector_clears"
down_revision: str | Sequence[str] | None = "0003_alert_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "detector_clears",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offsets", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("subject", "detector", "entity"),
    )
    with op.batch_alter_table("detector_clears", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_detector_clears_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("detector_clears", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_detector_clears_expires_at"))

    op.drop_table("detector_clears")
