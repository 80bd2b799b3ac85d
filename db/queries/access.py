"""The SQL form of a content access decision. Which viewer gets which decision is
resolvers/policy.py's business; this module only turns the decision into a WHERE clause."""

from dataclasses import dataclass

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
