"""feed snapshots and habit index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 13:50:26.286551
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_snapshots",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("viewer_id", sa.BigInteger(), nullable=True),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["viewer_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        prefixes=["UNLOGGED"],
    )
    op.create_index("feed_snapshots_created_idx", "feed_snapshots", ["created_at"], unique=False)
    op.create_index(
        "reactions_user_recent_idx",
        "reactions",
        ["user_id", sa.literal_column("created_at DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("reactions_user_recent_idx", table_name="reactions")
    op.drop_index("feed_snapshots_created_idx", table_name="feed_snapshots")
    op.drop_table("feed_snapshots")
