"""create schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:17:59.409333
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Text-search configuration per ISO 639-1 code. IMMUTABLE so the generated
# search_vector column and queries can both call it; unknown languages get 'simple'.
TS_CONFIG_FUNCTION = """
CREATE FUNCTION gateway_ts_config(lang text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE lang
    WHEN 'ar' THEN 'arabic' WHEN 'da' THEN 'danish' WHEN 'de' THEN 'german'
    WHEN 'el' THEN 'greek' WHEN 'en' THEN 'english' WHEN 'es' THEN 'spanish'
    WHEN 'fi' THEN 'finnish' WHEN 'fr' THEN 'french' WHEN 'hu' THEN 'hungarian'
    WHEN 'id' THEN 'indonesian' WHEN 'it' THEN 'italian' WHEN 'nl' THEN 'dutch'
    WHEN 'no' THEN 'norwegian' WHEN 'pt' THEN 'portuguese' WHEN 'ro' THEN 'romanian'
    WHEN 'ru' THEN 'russian' WHEN 'sv' THEN 'swedish' WHEN 'tr' THEN 'turkish'
    ELSE 'simple'
  END::regconfig
$$
"""

# contents.reaction_count follows the reactions table whoever writes it, so the
# POPULAR order and reactionCount never drift from the rows behind them.
REACTION_COUNT_FUNCTION = """
CREATE FUNCTION gateway_reaction_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE contents SET reaction_count = reaction_count + 1 WHERE id = NEW.content_id;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE contents SET reaction_count = reaction_count - 1 WHERE id = OLD.content_id;
  END IF;
  RETURN NULL;
END
$$
"""
REACTION_COUNT_TRIGGER = """
CREATE TRIGGER reactions_count_trigger AFTER INSERT OR DELETE ON reactions
FOR EACH ROW EXECUTE FUNCTION gateway_reaction_count()
"""


def upgrade() -> None:
    op.execute(TS_CONFIG_FUNCTION)
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9-]{0,39}$'", name="tags_name_check"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), server_default="MEMBER", nullable=False),
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("handle ~ '^[a-z0-9_]{3,30}$'", name="users_handle_check"),
        sa.CheckConstraint("role IN ('MEMBER', 'ADMIN')", name="users_role_check"),
        sa.CheckConstraint("email = lower(email)", name="users_email_lower_check"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("handle"),
    )
    op.create_table(
        "contents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="DRAFT", nullable=False),
        sa.Column("visibility", sa.Text(), server_default="PUBLIC", nullable=False),
        sa.Column("language", sa.Text(), server_default="en", nullable=False),
        sa.Column("reaction_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "listed_at",
            sa.DateTime(timezone=True),
            sa.Computed("coalesce(published_at, created_at)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector(gateway_ts_config(language), title), 'A') || setweight(to_tsvector(gateway_ts_config(language), coalesce(summary, '')), 'B') || setweight(to_tsvector(gateway_ts_config(language), body), 'C')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("language ~ '^[a-z]{2}$'", name="contents_language_check"),
        sa.CheckConstraint(
            "status <> 'PUBLISHED' OR published_at IS NOT NULL", name="contents_published_at_check"
        ),
        sa.CheckConstraint(
            "status IN ('DRAFT', 'PUBLISHED', 'ARCHIVED')", name="contents_status_check"
        ),
        sa.CheckConstraint(
            "visibility IN ('PUBLIC', 'MEMBERS', 'PRIVATE')", name="contents_visibility_check"
        ),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "contents_author_listed_idx",
        "contents",
        ["author_id", sa.literal_column("listed_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "contents_published_listed_idx",
        "contents",
        [sa.literal_column("listed_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("status = 'PUBLISHED'"),
    )
    op.create_index(
        "contents_published_popular_idx",
        "contents",
        [sa.literal_column("reaction_count DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("status = 'PUBLISHED'"),
    )
    op.create_index(
        "contents_search_idx", "contents", ["search_vector"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.BigInteger(), nullable=False),
        sa.Column("followee_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("follower_id <> followee_id", name="follows_not_self_check"),
        sa.ForeignKeyConstraint(["followee_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["follower_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("follower_id", "followee_id"),
    )
    op.create_index("follows_followee_idx", "follows", ["followee_id", "follower_id"], unique=False)
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "content_tags",
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["content_id"], ["contents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("content_id", "tag_id"),
    )
    op.create_index("content_tags_tag_idx", "content_tags", ["tag_id", "content_id"], unique=False)
    op.create_table(
        "followed_tags",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint("weight BETWEEN -1 AND 1", name="followed_tags_weight_check"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["preferences.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "tag_id"),
    )
    op.create_table(
        "muted_authors",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("user_id <> author_id", name="muted_authors_not_self_check"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["preferences.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "author_id"),
    )
    op.create_table(
        "muted_tags",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["preferences.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "tag_id"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('NEW_FOLLOWER', 'REACTION', 'NEW_CONTENT_FROM_FOLLOWED')",
            name="notifications_kind_check",
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["content_id"], ["contents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "notifications_recipient_idx",
        "notifications",
        ["recipient_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "notifications_unread_idx",
        "notifications",
        ["recipient_id", sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "reactions",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["content_id"], ["contents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "content_id"),
    )
    op.create_index("reactions_content_idx", "reactions", ["content_id", "user_id"], unique=False)
    op.execute(REACTION_COUNT_FUNCTION)
    op.execute(REACTION_COUNT_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER reactions_count_trigger ON reactions")
    op.execute("DROP FUNCTION gateway_reaction_count()")
    op.drop_index("reactions_content_idx", table_name="reactions")
    op.drop_table("reactions")
    op.drop_index(
        "notifications_unread_idx",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_index("notifications_recipient_idx", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("muted_tags")
    op.drop_table("muted_authors")
    op.drop_table("followed_tags")
    op.drop_index("content_tags_tag_idx", table_name="content_tags")
    op.drop_table("content_tags")
    op.drop_table("preferences")
    op.drop_index("follows_followee_idx", table_name="follows")
    op.drop_table("follows")
    op.drop_index("contents_search_idx", table_name="contents", postgresql_using="gin")
    op.drop_index(
        "contents_published_popular_idx",
        table_name="contents",
        postgresql_where=sa.text("status = 'PUBLISHED'"),
    )
    op.drop_index(
        "contents_published_listed_idx",
        table_name="contents",
        postgresql_where=sa.text("status = 'PUBLISHED'"),
    )
    op.drop_index("contents_author_listed_idx", table_name="contents")
    op.drop_table("contents")
    op.drop_table("users")
    op.drop_table("tags")
    op.execute("DROP FUNCTION gateway_ts_config(text)")
