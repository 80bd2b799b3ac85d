"""operations: rate-limit buckets shared by every gateway process

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:30:00.000000

Rate limits were kept per process, so N replicas gave every client N budgets. Each
process now keeps its buckets in memory and settles what it spent here every ~100 ms
(gateway/shared_rate_limits.py). UNLOGGED: the table is soft state, not worth WAL or
replication.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Float(precision=53), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key"),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
