"""stored feeds: per-viewer candidates, shared lists, walks as arrays, feed jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:00:00.000000

Feeds are read from stored, scored candidates (docs/ranking.md, "The stored feed"). The
triggers below are the rules that keep them honest, whatever writes a row (the API, the
seed, an operator): a publication queues its fan-out, content taken back queues its
removal, a change to someone's follows or preferences marks their feed stale (rebuilt
before it is read next), and a reaction queues a rebuild of the reactor's feed (their
habits changed). Jobs are written in the write's own transaction, so a write that rolls
back leaves none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLICATION_FUNCTION = """
CREATE FUNCTION gateway_feed_publication() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'PUBLISHED' AND NEW.visibility <> 'PRIVATE' THEN
    IF TG_OP = 'INSERT' OR OLD.status <> 'PUBLISHED' OR OLD.visibility <> NEW.visibility THEN
      INSERT INTO feed_jobs (kind, target) VALUES ('publish', NEW.id)
      ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
    END IF;
  ELSIF TG_OP = 'UPDATE' AND OLD.status = 'PUBLISHED' AND OLD.visibility <> 'PRIVATE' THEN
    INSERT INTO feed_jobs (kind, target) VALUES ('retract', NEW.id)
    ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  END IF;
  RETURN NULL;
END $$
"""

# A content's tags changed: its stored copies carry its tags (mutes filter on them), so
# the publication is fanned out again, which refreshes them.
RETAG_FUNCTION = """
CREATE FUNCTION gateway_feed_retag() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  item bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.content_id ELSE NEW.content_id END;
BEGIN
  INSERT INTO feed_jobs (kind, target)
  SELECT 'publish', item FROM contents
  WHERE id = item AND status = 'PUBLISHED' AND visibility <> 'PRIVATE'
  ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  RETURN NULL;
END $$
"""

# TG_ARGV[0] names the column that holds the viewer whose feed the change is about.
STALE_FUNCTION = """
CREATE FUNCTION gateway_feed_stale() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who bigint := (to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END) ->> TG_ARGV[0])::bigint;
BEGIN
  UPDATE feed_state SET stale = true WHERE viewer_id = who;
  IF FOUND THEN
    INSERT INTO feed_jobs (kind, target) VALUES ('rebuild', who)
    ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  END IF;
  RETURN NULL;
END $$
"""

HABIT_FUNCTION = """
CREATE FUNCTION gateway_feed_habit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
BEGIN
  INSERT INTO feed_jobs (kind, target)
  SELECT 'rebuild', who FROM feed_state WHERE viewer_id = who
  ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  RETURN NULL;
END $$
"""

TRIGGERS = [
    (
        "contents_feed_trigger",
        "AFTER INSERT OR UPDATE OF status, visibility ON contents",
        "gateway_feed_publication()",
    ),
    ("content_tags_feed_trigger", "AFTER INSERT OR DELETE ON content_tags", "gateway_feed_retag()"),
    (
        "follows_feed_trigger",
        "AFTER INSERT OR DELETE ON follows",
        "gateway_feed_stale('follower_id')",
    ),
    (
        "preferences_feed_trigger",
        "AFTER INSERT OR UPDATE OR DELETE ON preferences",
        "gateway_feed_stale('user_id')",
    ),
    (
        "followed_tags_feed_trigger",
        "AFTER INSERT OR UPDATE OR DELETE ON followed_tags",
        "gateway_feed_stale('user_id')",
    ),
    (
        "muted_tags_feed_trigger",
        "AFTER INSERT OR DELETE ON muted_tags",
        "gateway_feed_stale('user_id')",
    ),
    (
        "muted_authors_feed_trigger",
        "AFTER INSERT OR DELETE ON muted_authors",
        "gateway_feed_stale('user_id')",
    ),
    ("reactions_feed_trigger", "AFTER INSERT OR DELETE ON reactions", "gateway_feed_habit()"),
]
FUNCTIONS = [PUBLICATION_FUNCTION, RETAG_FUNCTION, STALE_FUNCTION, HABIT_FUNCTION]


def _viewer() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("viewer_id", sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "feed_jobs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("target", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        "feed_jobs_waiting_key",
        "feed_jobs",
        ["kind", "target"],
        unique=True,
        postgresql_where=sa.text("claimed_at IS NULL"),
    )
    op.create_table(
        "feed_shared",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("tag_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("reactions", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("bucket", "position"),
        prefixes=["UNLOGGED"],
    )
    op.create_index("feed_shared_created_idx", "feed_shared", ["created_at"], unique=False)
    op.create_table(
        "feed_habits",
        _viewer(),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.Column("decayed", sa.REAL(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["viewer_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("viewer_id", "tag_id"),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        "feed_habits_top_idx",
        "feed_habits",
        ["tag_id"],
        unique=False,
        postgresql_where=sa.text("rank <= 5"),
    )
    op.create_table(
        "feed_state",
        _viewer(),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("entries", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["viewer_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("viewer_id"),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "feed_entries",
        _viewer(),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("tag_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("affinity", sa.REAL(), nullable=False),
        sa.Column("reactions", sa.Integer(), nullable=False),
        sa.Column("habit_tag_id", sa.BigInteger(), nullable=True),
        sa.Column("habit_decayed", sa.REAL(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["content_id"], ["contents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["viewer_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("viewer_id", "content_id"),
        prefixes=["UNLOGGED"],
    )
    op.create_index("feed_entries_content_idx", "feed_entries", ["content_id"], unique=False)
    # Walks are a cache of an hour: the old shape's rows are dropped, not converted.
    op.execute("TRUNCATE feed_snapshots")
    op.drop_column("feed_snapshots", "items")
    op.add_column(
        "feed_snapshots",
        sa.Column("content_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
    )
    op.add_column(
        "feed_snapshots", sa.Column("scores", postgresql.ARRAY(sa.Float()), nullable=False)
    )
    for function in FUNCTIONS:
        op.execute(function)
    for name, when, call in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW EXECUTE FUNCTION {call}")


def downgrade() -> None:
    for name, when, _ in TRIGGERS:
        table = when.rsplit(" ON ", 1)[1]
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in (
        "gateway_feed_publication",
        "gateway_feed_retag",
        "gateway_feed_stale",
        "gateway_feed_habit",
    ):
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("TRUNCATE feed_snapshots")
    op.drop_column("feed_snapshots", "scores")
    op.drop_column("feed_snapshots", "content_ids")
    op.add_column(
        "feed_snapshots",
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    )
    op.drop_index("feed_entries_content_idx", table_name="feed_entries")
    op.drop_table("feed_entries")
    op.drop_table("feed_state")
    op.drop_index(
        "feed_habits_top_idx", table_name="feed_habits", postgresql_where=sa.text("rank <= 5")
    )
    op.drop_table("feed_habits")
    op.drop_index("feed_shared_created_idx", table_name="feed_shared")
    op.drop_table("feed_shared")
    op.drop_index(
        "feed_jobs_waiting_key",
        table_name="feed_jobs",
        postgresql_where=sa.text("claimed_at IS NULL"),
    )
    op.drop_table("feed_jobs")
