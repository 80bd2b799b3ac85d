"""email and webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:30:00.000000

Verified addresses, email settings, the tokens email links carry, webhook endpoints,
and the outbox that every email and webhook delivery goes through. A statement that
adds to the outbox wakes the delivery workers (NOTIFY gateway_outbox) when it commits.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_NOTIFY_FUNCTION = """
CREATE FUNCTION gateway_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gateway_outbox', '');
  RETURN NULL;
END
$$
"""
# Once per statement: a publication that mails 10,000 followers wakes workers once.
OUTBOX_NOTIFY_TRIGGER = """
CREATE TRIGGER outbox_notify_trigger AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION gateway_outbox_notify()
"""


def upgrade() -> None:
    now = sa.text("now()")
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True)))
    op.create_table(
        "email_settings",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("new_follower", sa.Text(), server_default="IMMEDIATELY", nullable=False),
        sa.Column("reaction", sa.Text(), server_default="DIGEST", nullable=False),
        sa.Column(
            "new_content_from_followed", sa.Text(), server_default="IMMEDIATELY", nullable=False
        ),
        sa.Column("digest", sa.Text(), server_default="OFF", nullable=False),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint(
            "new_follower IN ('IMMEDIATELY', 'DIGEST', 'NEVER')",
            name="email_settings_follower_check",
        ),
        sa.CheckConstraint(
            "reaction IN ('IMMEDIATELY', 'DIGEST', 'NEVER')", name="email_settings_reaction_check"
        ),
        sa.CheckConstraint(
            "new_content_from_followed IN ('IMMEDIATELY', 'DIGEST', 'NEVER')",
            name="email_settings_content_check",
        ),
        sa.CheckConstraint(
            "digest IN ('OFF', 'DAILY', 'WEEKLY')", name="email_settings_digest_check"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index(
        "email_settings_digest_due_idx",
        "email_settings",
        ["next_digest_at"],
        postgresql_where=sa.text("digest <> 'OFF'"),
    )
    op.create_table(
        "account_tokens",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('VERIFY_EMAIL', 'RESET_PASSWORD', 'UNSUBSCRIBE')",
            name="account_tokens_purpose_check",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("account_tokens_user_idx", "account_tokens", ["user_id", "purpose"])
    op.create_index("account_tokens_expires_idx", "account_tokens", ["expires_at"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("last_delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=True),
        sa.Column("webhook_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="PENDING", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=now, nullable=False
        ),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('EMAIL', 'WEBHOOK')", name="outbox_channel_check"),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SENDING', 'SENT', 'SKIPPED', 'DEAD')",
            name="outbox_status_check",
        ),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "outbox_due_idx",
        "outbox",
        ["channel", "next_attempt_at"],
        postgresql_where=sa.text("status IN ('PENDING', 'SENDING')"),
    )
    op.create_index("outbox_created_idx", "outbox", ["created_at"])
    op.execute(OUTBOX_NOTIFY_FUNCTION)
    op.execute(OUTBOX_NOTIFY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify_trigger ON outbox")
    op.execute("DROP FUNCTION gateway_outbox_notify()")
    op.drop_index("outbox_created_idx", table_name="outbox")
    op.drop_index("outbox_due_idx", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("webhooks")
    op.drop_index("account_tokens_expires_idx", table_name="account_tokens")
    op.drop_index("account_tokens_user_idx", table_name="account_tokens")
    op.drop_table("account_tokens")
    op.drop_index("email_settings_digest_due_idx", table_name="email_settings")
    op.drop_table("email_settings")
    op.drop_column("users", "email_verified_at")
