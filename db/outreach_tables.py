"""Tables of what reaches people outside the app: email settings, the tokens that links
in emails carry, webhook endpoints, and the outbox every email and webhook delivery
goes through (migration 0008)."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

EMAIL_CHOICES = ("IMMEDIATELY", "DIGEST", "NEVER")
DIGEST_FREQUENCIES = ("OFF", "DAILY", "WEEKLY")
# What a user who never chose gets (docs/email.md).
DEFAULT_EMAIL_CHOICES = {
    "new_follower": "IMMEDIATELY",
    "reaction": "DIGEST",
    "new_content_from_followed": "IMMEDIATELY",
}
DEFAULT_DIGEST = "OFF"
TOKEN_PURPOSES = ("VERIFY_EMAIL", "RESET_PASSWORD", "UNSUBSCRIBE")
CHANNELS = ("EMAIL", "WEBHOOK")
OUTBOX_STATUSES = ("PENDING", "SENDING", "SENT", "SKIPPED", "DEAD")
WEBHOOK_EVENTS = (
    "content.published",
    "content.updated",
    "content.archived",
    "content.deleted",
    "user.registered",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _user_id(*, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def _choice(name: str) -> sa.Column[str]:
    default = DEFAULT_EMAIL_CHOICES[name]
    return sa.Column(sa.Text, nullable=False, server_default=default)


class EmailSettings(SQLModel, table=True):
    """One row per user who changed them; the others get DEFAULT_EMAIL_CHOICES."""

    __tablename__ = "email_settings"
    __table_args__ = (
        sa.CheckConstraint(
            _in("new_follower", EMAIL_CHOICES), name="email_settings_follower_check"
        ),
        sa.CheckConstraint(_in("reaction", EMAIL_CHOICES), name="email_settings_reaction_check"),
        sa.CheckConstraint(
            _in("new_content_from_followed", EMAIL_CHOICES), name="email_settings_content_check"
        ),
        sa.CheckConstraint(_in("digest", DIGEST_FREQUENCIES), name="email_settings_digest_check"),
        # The worker's question every few seconds: whose digest is due?
        sa.Index(
            "email_settings_digest_due_idx",
            "next_digest_at",
            postgresql_where=sa.text("digest <> 'OFF'"),
        ),
    )

    user_id: int = Field(sa_column=_user_id(primary_key=True))
    new_follower: str = Field(default="IMMEDIATELY", sa_column=_choice("new_follower"))
    reaction: str = Field(default="DIGEST", sa_column=_choice("reaction"))
    new_content_from_followed: str = Field(
        default="IMMEDIATELY", sa_column=_choice("new_content_from_followed")
    )
    digest: str = Field(
        default=DEFAULT_DIGEST,
        sa_column=sa.Column(sa.Text, nullable=False, server_default=DEFAULT_DIGEST),
    )
    # The window of the next digest starts here (null: it covers one period back).
    last_digest_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    next_digest_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    updated_at: datetime | None = Field(default=None, sa_column=_now())


class AccountToken(SQLModel, table=True):
    """A token an email link carries. Only its SHA-256 is kept: the token itself is
    derived from the server secret and the outbox row that mailed it, so it is in no
    table and no log."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        sa.CheckConstraint(_in("purpose", TOKEN_PURPOSES), name="account_tokens_purpose_check"),
        sa.Index("account_tokens_user_idx", "user_id", "purpose"),
        sa.Index("account_tokens_expires_idx", "expires_at"),
    )

    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, primary_key=True))
    user_id: int = Field(sa_column=_user_id())
    purpose: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # VERIFY_EMAIL: the address it confirms; UNSUBSCRIBE: the setting it turns off.
    scope: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=_now())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    events: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    # whsec_<base64>: signing needs the secret itself, so it is kept (never shown again).
    secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    active: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    )
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())
    last_delivery_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # Failed attempts since the last success; at the limit the endpoint is disabled.
    consecutive_failures: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )


class Outbox(SQLModel, table=True):
    """Every email and webhook delivery, written in the transaction of the write that
    causes it and sent by the delivery worker (gateway/worker.py, docs/email.md)."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.CheckConstraint(_in("channel", CHANNELS), name="outbox_channel_check"),
        sa.CheckConstraint(_in("status", OUTBOX_STATUSES), name="outbox_status_check"),
        # What workers claim: due rows, oldest first.
        sa.Index(
            "outbox_due_idx",
            "channel",
            "next_attempt_at",
            postgresql_where=sa.text("status IN ('PENDING', 'SENDING')"),
        ),
        sa.Index("outbox_created_idx", "created_at"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    channel: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # EMAIL: the kind of message (verify_email, notification, digest, ...);
    # WEBHOOK: the event type (content.published, ...).
    topic: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    recipient_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")),
    )
    webhook_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("webhooks.id", ondelete="CASCADE")),
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONB, nullable=False)
    )
    status: str = Field(
        default="PENDING", sa_column=sa.Column(sa.Text, nullable=False, server_default="PENDING")
    )
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    next_attempt_at: datetime | None = Field(default=None, sa_column=_now())
    # A SENDING row belongs to `claimed_by` until then; after it, another worker may retry.
    claimed_until: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    claimed_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=_now())
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
