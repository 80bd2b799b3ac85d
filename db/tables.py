"""The data model. The first migration creates exactly this; a test compares them."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlmodel import Field, SQLModel

# Email, webhooks and the outbox live in their own module; importing it puts them in
# `metadata` below, which the migrations are compared with.
from db.event_log import EventLogHorizon as EventLogHorizon
from db.event_log import LoggedEventRow as LoggedEventRow
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
    # Minutes to read the body at 230 words a minute, rounded up; at least 1.
    reading_time_minutes: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer,
            sa.Computed(
                "greatest(1, ceil(coalesce(array_length("
                "regexp_split_to_array(btrim(body), '\\s+'), 1), 0) / 230.0))::integer",
                persisted=True,
            ),
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

    # A function of the name (gateway_tag_id, set by a trigger on insert: migration 0006),
    # so an id tells nothing about when, or whether, its tag was first named.
    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger, primary_key=True, autoincrement=False, server_default=sa.FetchedValue()
        ),
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
        # One actor's recent notifications to one recipient: repeats collapse into one.
        sa.Index(
            "notifications_collapse_idx", "actor_id", "recipient_id", sa.text("created_at DESC")
        ),
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
    and rows older than the walk lifetime are deleted by the feed worker."""

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
    # In rank order, with each item's score.
    content_ids: list[int] = Field(sa_column=sa.Column(ARRAY(sa.BigInteger), nullable=False))
    scores: list[float] = Field(sa_column=sa.Column(ARRAY(sa.Float), nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now())


# The stored feed (docs/ranking.md, "The stored feed"). Every feed table is UNLOGGED: it
# is derived from the tables above, costs no WAL, and a crash empties all of them at
# once, after which each viewer's feed is rebuilt on their next visit.


def _viewer_key() -> sa.Column[int]:
    return sa.Column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class FeedEntry(SQLModel, table=True):
    """One scored candidate of one viewer's feed: what ranking it at read time needs
    without reading the content (its author, age, language and tags for the filters;
    the viewer's affinity to it and its reactions when it was scored)."""

    __tablename__ = "feed_entries"
    __table_args__ = (
        sa.Index("feed_entries_content_idx", "content_id"),
        {"prefixes": ["UNLOGGED"]},
    )

    viewer_id: int = Field(sa_column=_viewer_key())
    content_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True
        )
    )
    author_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    published_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    language: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    tag_ids: list[int] = Field(sa_column=sa.Column(ARRAY(sa.BigInteger), nullable=False))
    # followed author + tag weights + strongest habit, each times its weight.
    affinity: float = Field(sa_column=sa.Column(sa.REAL, nullable=False))
    reactions: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    # The habit that counted (for the edge's reasons), and its decayed reactions.
    habit_tag_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    habit_decayed: float = Field(
        default=0.0, sa_column=sa.Column(sa.REAL, nullable=False, server_default="0")
    )


class FeedState(SQLModel, table=True):
    """Where a viewer's stored feed stands. A viewer without a row has never read their
    feed: it is built on their first visit."""

    __tablename__ = "feed_state"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    viewer_id: int = Field(sa_column=_viewer_key())
    built_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # Follows or preferences changed since it was built: rebuilt before it is read.
    stale: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    # When the viewer last read it (to the hour): only recent readers are fanned out to.
    seen_at: datetime | None = Field(default=None, sa_column=_now())
    entries: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    # The head (db/reads/walks.py `_head`): the stored candidates that can reach the best
    # `head_size` of a first page until `head_until`, in step, best first; cleared by
    # whatever changes the stored candidates.
    head_ids: list[int] | None = Field(default=None, sa_column=sa.Column(ARRAY(sa.BigInteger)))
    head_published: list[datetime] | None = Field(
        default=None, sa_column=sa.Column(ARRAY(sa.DateTime(timezone=True)))
    )
    head_affinity: list[float] | None = Field(default=None, sa_column=sa.Column(ARRAY(sa.REAL)))
    head_reactions: list[int] | None = Field(default=None, sa_column=sa.Column(ARRAY(sa.Integer)))
    head_habit_tags: list[int | None] | None = Field(
        default=None, sa_column=sa.Column(ARRAY(sa.BigInteger))
    )
    head_habit_decayed: list[float] | None = Field(
        default=None, sa_column=sa.Column(ARRAY(sa.REAL))
    )
    head_size: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    head_until: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    # The head-th best score any of the head's candidates will have until head_until:
    # what an item from outside the head must reach to be in it.
    head_floor: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    # The viewer's habits (decayed reactions per tag) when the head was stored, at
    # `head_at`: a reaction of theirs clears the head (a trigger), so they stay theirs.
    head_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    head_learned_tags: list[int] | None = Field(
        default=None, sa_column=sa.Column(ARRAY(sa.BigInteger))
    )
    head_learned_decayed: list[float] | None = Field(
        default=None, sa_column=sa.Column(ARRAY(sa.Float))
    )


class FeedHabit(SQLModel, table=True):
    """A viewer's strongest habits as of their last rebuild: what fan-out scores new
    items with, and (the top five, `rank` <= 5) which tags bring new items to them."""

    __tablename__ = "feed_habits"
    __table_args__ = (
        sa.Index("feed_habits_top_idx", "tag_id", postgresql_where=sa.text("rank <= 5")),
        {"prefixes": ["UNLOGGED"]},
    )

    viewer_id: int = Field(sa_column=_viewer_key())
    tag_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        )
    )
    decayed: float = Field(sa_column=sa.Column(sa.REAL, nullable=False))
    rank: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))


class FeedShared(SQLModel, table=True):
    """The popular and fresh items everyone of an audience may see, ranked once a minute
    (`bucket` names the audience and the minute): anonymous viewers walk it as their
    feed, and every signed-in first page mixes in the top of the members' one."""

    __tablename__ = "feed_shared"
    __table_args__ = (
        sa.Index("feed_shared_created_idx", "created_at"),
        {"prefixes": ["UNLOGGED"]},
    )

    bucket: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    position: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True))
    content_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    author_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    published_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    language: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    tag_ids: list[int] = Field(sa_column=sa.Column(ARRAY(sa.BigInteger), nullable=False))
    reactions: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    score: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now())


class FeedJob(SQLModel, table=True):
    """Work a write leaves for the feed worker, written by triggers in the write's own
    transaction (so a rolled-back write leaves none): fan a publication out, take one
    back, or rebuild a viewer's feed. A job is claimed, done, then deleted: one whose
    worker died is taken up again."""

    __tablename__ = "feed_jobs"
    __table_args__ = (
        # One waiting job per kind and target; one being worked on does not count, so a
        # change that arrives meanwhile queues the job again.
        sa.Index(
            "feed_jobs_waiting_key",
            "kind",
            "target",
            unique=True,
            postgresql_where=sa.text("claimed_at IS NULL"),
        ),
        {"prefixes": ["UNLOGGED"]},
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    target: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now())
    # Set by the worker that took it; a job claimed long ago was lost with its worker.
    claimed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )


class AuthThrottle(SQLModel, table=True):
    """Failed sign-ins and sign-ups per login and per address (resolvers/throttle.py): one
    row per key, holding the time its allowance is whole again (the GCRA's theoretical
    arrival time). A cache: UNLOGGED, and rows past their time are deleted as others come."""

    __tablename__ = "auth_throttle"
    __table_args__ = (
        sa.Index("auth_throttle_tat_idx", "tat"),
        {"prefixes": ["UNLOGGED"]},
    )

    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    tat: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class RateLimitBucket(SQLModel, table=True):
    """Each rate-limit key's budget as every gateway process has spent it
    (gateway/shared_rate_limits.py): `tokens` left at `updated_at`, refilling from then.
    Soft state: UNLOGGED (a crash empties it, which forgives everyone once), and rows
    idle long enough to be full again are deleted."""

    __tablename__ = "rate_limit_buckets"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    tokens: float = Field(sa_column=sa.Column(sa.Float(precision=53), nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_now())
