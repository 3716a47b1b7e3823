"""alert holds shared by every replica

Revision ID: 0003_alert_holds
Revises: 0002_people_keys_alerts
Create Date: 2026-11-27 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_alert_holds"
down_revision: str | Sequence[str] | None = "0002_people_keys_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "alert_holds",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
        ),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    with op.batch_alter_table("alert_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_holds_subject"), ["subject"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("alert_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_holds_subject"))

    op.drop_table("alert_holds")
