"""content reading time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00.000000

Minutes a reader needs for the body at 230 words a minute, rounded up and at least one:
a column Postgres keeps with the body, so reading it costs what reading the title does.
Adding it rewrites the contents table once (about a minute at a million rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READING_TIME = (
    "greatest(1, ceil(coalesce(array_length(regexp_split_to_array(btrim(body), '\\s+'), 1), 0)"
    " / 230.0))::integer"
)


def upgrade() -> None:
    op.add_column(
        "contents",
        sa.Column(
            "reading_time_minutes",
            sa.Integer(),
            sa.Computed(READING_TIME, persisted=True),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("contents", "reading_time_minutes")
