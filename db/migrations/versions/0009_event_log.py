"""event log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:00:00.000000

The event log (db/event_log.py) that live updates follow and resume from, and its
horizon. Events used to travel only as NOTIFY inside the writes' transactions; no write
transaction notifies any more, so the outbox's insert trigger goes too: the process that
committed wakes the delivery workers after the commit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("tx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("tx", "id"),
    )
    op.create_table(
        "event_log_horizon",
        sa.Column("one", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("one", name="event_log_horizon_one_row"),
        sa.PrimaryKeyConstraint("one"),
    )
    op.execute("INSERT INTO event_log_horizon (tx, id) VALUES (0, 0)")
    op.execute("DROP TRIGGER outbox_notify_trigger ON outbox")
    op.execute("DROP FUNCTION gateway_outbox_notify()")


def downgrade() -> None:
    op.execute(
        "CREATE FUNCTION gateway_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('gateway_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_notify_trigger AFTER INSERT ON outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION gateway_outbox_notify()"
    )
    op.drop_table("event_log_horizon")
    op.drop_table("event_log")
