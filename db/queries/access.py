"""The SQL form of a content access decision. Which viewer gets which decision is
resolvers/policy.py's business; this module only turns the decision into a WHERE clause."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from db.tables import Content


@dataclass(frozen=True, slots=True)
class ContentAccess:
    """Content a viewer may see: everything, or PUBLISHED content whose visibility is in
    `visibilities`, plus whatever `author_id` wrote."""

    everything: bool = False
    visibilities: tuple[str, ...] = ("PUBLIC",)
    author_id: int | None = None


def access_clause(access: ContentAccess) -> sa.ColumnElement[bool]:
    if access.everything:
        return sa.true()
    published = sa.and_(
        col(Content.status) == "PUBLISHED",
        col(Content.visibility).in_(access.visibilities),
    )
    if access.author_id is None:
        return published
    return sa.or_(published, col(Content.author_id) == access.author_id)


class SqlParams:
    """$n parameters of a statement written as text, numbered as they are added."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def access_sql(access: ContentAccess, row: str, params: SqlParams) -> str:
    """`access_clause` as SQL text over the contents row `row`, for statements the
    compiled read path writes out (db/queries/content_json.py)."""
    if access.everything:
        return "TRUE"
    published = (
        f"({row}.status = 'PUBLISHED'"
        f" AND {row}.visibility = ANY({params(list(access.visibilities), 'text[]')}))"
    )
    if access.author_id is None:
        return published
    return f"({published} OR {row}.author_id = {params(access.author_id, 'bigint')})"
