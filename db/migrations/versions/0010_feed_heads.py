"""feed heads: the part of each stored feed that can reach a first page for a while

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:30:00.000000

A first page without a walk reads the viewer's stored candidates that can reach its
head until `head_until` (docs/ranking.md, "Heads"), kept on the viewer's feed_state row
as arrays in step, instead of every stored candidate; and the viewer's habits (decayed
reactions per tag) as of `head_at`, which order the page's tags. Whatever changes the
stored candidates (fan-out, removal, trimming, a rebuild, pruning) clears it, and so
does a reaction of the viewer (its trigger, below); the next first page ranks every
candidate and stores it again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    ("head_ids", postgresql.ARRAY(sa.BigInteger())),
    ("head_published", postgresql.ARRAY(sa.DateTime(timezone=True))),
    ("head_affinity", postgresql.ARRAY(sa.REAL())),
    ("head_reactions", postgresql.ARRAY(sa.Integer())),
    ("head_habit_tags", postgresql.ARRAY(sa.BigInteger())),
    ("head_habit_decayed", postgresql.ARRAY(sa.REAL())),
    ("head_size", sa.Integer()),
    ("head_until", sa.DateTime(timezone=True)),
    ("head_floor", sa.Float()),
    ("head_at", sa.DateTime(timezone=True)),
    ("head_learned_tags", postgresql.ARRAY(sa.BigInteger())),
    ("head_learned_decayed", postgresql.ARRAY(sa.Float())),
]

HABIT_FUNCTION = """
CREATE OR REPLACE FUNCTION gateway_feed_habit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
BEGIN
  UPDATE feed_state SET head_until = NULL WHERE viewer_id = who AND head_until IS NOT NULL;
  INSERT INTO feed_jobs (kind, target)
  SELECT 'rebuild', who FROM feed_state WHERE viewer_id = who
  ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  RETURN NULL;
END $$
"""

HABIT_FUNCTION_BEFORE = """
CREATE OR REPLACE FUNCTION gateway_feed_habit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
BEGIN
  INSERT INTO feed_jobs (kind, target)
  SELECT 'rebuild', who FROM feed_state WHERE viewer_id = who
  ON CONFLICT (kind, target) WHERE claimed_at IS NULL DO NOTHING;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("feed_state", sa.Column(name, type_, nullable=True))
    op.execute(HABIT_FUNCTION)


def downgrade() -> None:
    op.execute(HABIT_FUNCTION_BEFORE)
    for name, _ in reversed(COLUMNS):
        op.drop_column("feed_state", name)
