"""The data model. The first migration creates exactly this; a test compares them."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlmodel import Field, SQLModel

# Email, webhooks and the outbox live in their own module; importing it puts them in
# `metadata` below, which the migrations are compared with.
from db.outreach_tables import AccountToken as AccountToken
from db.outreach_tables import EmailSettings as EmailSettings
from db.outreach_tables import Outbox as Outbox
from db.outreach_tables import Webhook as Webhook

ROLES = ("MEMBER", "ADMIN")
CONTENT_STATUSES = ("DRAFT", "PUBLISHED", "ARCHIVED")
VISIBILITIES = ("PUBLIC", "MEMBERS", "PRIVATE")
NOTIFICATION_KINDS = ("NEW_FOLLOWER", "REACTION", "NEW_CONTENT_FROM_FOLLOWED")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_in("role", ROLES), name="users_role_check"),
        sa.CheckConstraint("handle ~ '^[a-z0-9_]{3,30}$'", name="users_handle_check"),
        sa.CheckConstraint("email = lower(email)", name="users_email_lower_check"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    handle: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    password_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    display_name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    bio: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    role: str = Field(
        default="MEMBER", sa_column=sa.Column(sa.Text, nullable=False, server_default="MEMBER")
    )
    # Bumped by logout: tokens carry the version they were issued under.
    token_version: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    # Set when the owner followed the link of a verification (or password reset) email.
    email_verified_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())
    updated_at: datetime | None = Field(default=None, sa_column=_now())


class Content(SQLModel, table=True):
    __tablename__ = "contents"
    __table_args__ = (
        sa.CheckConstraint(_in("status", CONTENT_STATUSES), name="contents_status_check"),
        sa.CheckConstraint(_in("visibility", VISIBILITIES), name="contents_visibility_check"),
        sa.CheckConstraint("language ~ '^[a-z]{2}$'", name="contents_language_check"),
        sa.CheckConstraint(
            "status <> 'PUBLISHED' OR published_at IS NOT NULL", name="contents_published_at_check"
        ),
        # Newest-first lists of what anyone may read: the anonymous front page.
        sa.Index(
            "contents_published_listed_idx",
            sa.text("listed_at DESC"),
            sa.text("id DESC"),
            postgresql_where=sa.text("status = 'PUBLISHED'"),
        ),
        sa.Index(
            "contents_published_popular_idx",
            sa.text("reaction_count DESC"),
            sa.text("id DESC"),
            postgresql_where=sa.text("status = 'PUBLISHED'"),
        ),
        sa.Index(
            "contents_author_listed_idx", "author_id", sa.text("listed_at DESC"), sa.text("id DESC")
        ),
        sa.Index("contents_search_idx", "search_vector", postgresql_using="gin"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    author_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        )
    )
    title: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    summary: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(
        default="DRAFT", sa_column=sa.Column(sa.Text, nullable=False, server_default="DRAFT")
    )
    visibility: str = Field(
        default="PUBLIC", sa_column=sa.Column(sa.Text, nullable=False, server_default="PUBLIC")
    )
    language: str = Field(
        default="en", sa_column=sa.Column(sa.Text, nullable=False, server_default="en")
    )
    # Kept by triggers on reactions, so POPULAR ordering is an index scan.
    reaction_count: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())
    updated_at: datetime | None = Field(default=None, sa_column=_now())
    published_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    # When a list ordered by time shows it: publication, or creation for drafts.
    listed_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.DateTime(timezone=True),
            sa.Computed("coalesce(published_at, created_at)", persisted=True),
            nullable=False,
        ),
    )
    search_vector: str | None = Field(
        default=None,
        sa_column=sa.Column(
            TSVECTOR,
            sa.Computed(
                "setweight(to_tsvector(gateway_ts_config(language), title), 'A')"
                " || setweight(to_tsvector(gateway_ts_config(language), coalesce(summary, '')), 'B')"
                " || setweight(to_tsvector(gateway_ts_config(language), body), 'C')",
                persisted=True,
            ),
            nullable=False,
        ),
    )


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9-]{0,39}$'", name="tags_name_check"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    created_at: datetime | None = Field(default=None, sa_column=_now())


class ContentTag(SQLModel, table=True):
    __tablename__ = "content_tags"
    __table_args__ = (sa.Index("content_tags_tag_idx", "tag_id", "content_id"),)

    content_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tag_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        )
    )


class Follow(SQLModel, table=True):
    __tablename__ = "follows"
    __table_args__ = (
        sa.CheckConstraint("follower_id <> followee_id", name="follows_not_self_check"),
        sa.Index("follows_followee_idx", "followee_id", "follower_id"),
    )

    follower_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    followee_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())


class Reaction(SQLModel, table=True):
    __tablename__ = "reactions"
    __table_args__ = (
        sa.Index("reactions_content_idx", "content_id", "user_id"),
        # A viewer's recent reactions: what their habits are learned from.
        sa.Index("reactions_user_recent_idx", "user_id", sa.text("created_at DESC")),
    )

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    content_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True
        )
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())


class Preferences(SQLModel, table=True):
    """One row per user who saved preferences; followed and muted lists hang off it."""

    __tablename__ = "preferences"

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    # ISO 639-1 codes; empty means every language.
    languages: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(ARRAY(sa.Text), nullable=False, server_default="{}"),
    )
    updated_at: datetime | None = Field(default=None, sa_column=_now())


class FollowedTag(SQLModel, table=True):
    __tablename__ = "followed_tags"
    __table_args__ = (
        sa.CheckConstraint("weight BETWEEN -1 AND 1", name="followed_tags_weight_check"),
    )

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("preferences.user_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    tag_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        )
    )
    weight: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class MutedTag(SQLModel, table=True):
    __tablename__ = "muted_tags"

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("preferences.user_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    tag_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        )
    )


class MutedAuthor(SQLModel, table=True):
    __tablename__ = "muted_authors"
    __table_args__ = (
        sa.CheckConstraint("user_id <> author_id", name="muted_authors_not_self_check"),
    )

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("preferences.user_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    author_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", NOTIFICATION_KINDS), name="notifications_kind_check"),
        sa.Index("notifications_recipient_idx", "recipient_id", sa.text("id DESC")),
        sa.Index(
            "notifications_unread_idx",
            "recipient_id",
            sa.text("id DESC"),
            postgresql_where=sa.text("read_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    recipient_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        )
    )
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    actor_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")),
    )
    content_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("contents.id", ondelete="CASCADE")),
    )
    created_at: datetime | None = Field(default=None, sa_column=_now())
    read_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


metadata = SQLModel.metadata


class FeedSnapshot(SQLModel, table=True):
    """A ranked list frozen when a viewer starts walking their feed or a search, so later
    pages neither repeat nor skip items whatever changes meanwhile. A cache: UNLOGGED,
    and rows older than the walk lifetime are deleted as new ones arrive."""

    __tablename__ = "feed_snapshots"
    __table_args__ = (
        sa.Index("feed_snapshots_created_idx", "created_at"),
        {"prefixes": ["UNLOGGED"]},
    )

    id: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    viewer_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")),
    )
    # [[content id, score, [reason, ...]], ...] in rank order.
    items: list[Any] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now())
