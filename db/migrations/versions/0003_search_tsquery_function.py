"""search tsquery function

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:20:00.000000

Search parses a query with each language's configuration, and most configurations
produce the same lexemes (`'python' | 'python' | ...`). Postgres estimates OR'd terms
as if independent, so the repeated term looked many times more common than it is and
the planner picked the wrong path (docs/performance.md). This function keeps one copy
of each distinct parse. It is IMMUTABLE so the planner folds it into a constant and
can estimate the query it will actually run.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# NULL when no configuration finds a lexeme (only stop words or punctuation): `@@ NULL`
# matches nothing, as an empty query should.
SEARCH_TSQUERY_FUNCTION = """
CREATE FUNCTION gateway_search_tsquery(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(DISTINCT '(' || parsed::text || ')', ' | ')::tsquery
  FROM unnest(ARRAY[
    websearch_to_tsquery('simple', query), websearch_to_tsquery('english', query),
    websearch_to_tsquery('german', query), websearch_to_tsquery('french', query),
    websearch_to_tsquery('spanish', query), websearch_to_tsquery('portuguese', query),
    websearch_to_tsquery('italian', query), websearch_to_tsquery('dutch', query)
  ]) AS parsed
  WHERE numnode(parsed) > 0
$$
"""


def upgrade() -> None:
    op.execute(SEARCH_TSQUERY_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION gateway_search_tsquery(text)")
