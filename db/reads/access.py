"""Who may see which content, in SQL: the one place a content access decision becomes a
condition. Which viewer gets which decision is resolvers/policy.py's business; every
read and every write that looks content up goes through `content_visible`."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from db.reads.sql import BIGINT, TEXTS, lit, param


class AccessKind(StrEnum):
    """The shape of a decision, which is all a compiled statement's text depends on."""

    EVERYTHING = "everything"
    PUBLISHED = "published"
    PUBLISHED_OR_OWN = "published_or_own"


@dataclass(frozen=True, slots=True)
class ContentAccess:
    """Content a viewer may see: everything, or PUBLISHED content whose visibility is in
    `visibilities`, plus whatever `author_id` wrote."""

    everything: bool = False
    visibilities: tuple[str, ...] = ("PUBLIC",)
    author_id: int | None = None

    @property
    def kind(self) -> AccessKind:
        if self.everything:
            return AccessKind.EVERYTHING
        return AccessKind.PUBLISHED if self.author_id is None else AccessKind.PUBLISHED_OR_OWN

    def values(self) -> dict[str, Any]:
        """The parameter `content_visible` reads in a compiled statement (the author is
        the statement's viewer)."""
        return {"visibilities": list(self.visibilities)}


def content_visible(
    kind: AccessKind, row: Any, *, visibilities: Any, author: Any
) -> ColumnElement[bool]:
    """Whether the contents row `row` is visible under a decision of `kind`: PUBLISHED
    with a visibility in `visibilities`, or (PUBLISHED_OR_OWN) written by `author`."""
    if kind is AccessKind.EVERYTHING:
        return sa.true()
    published = sa.and_(row.c.status == lit("PUBLISHED"), row.c.visibility == sa.any_(visibilities))
    if kind is AccessKind.PUBLISHED:
        return published
    return sa.or_(published, row.c.author_id == author)


def visible_to(access: ContentAccess, row: Any) -> ColumnElement[bool]:
    """`content_visible` with the decision's values bound: for statements run at once."""
    return content_visible(
        access.kind,
        row,
        visibilities=sa.bindparam("visibilities", list(access.visibilities), TEXTS, unique=True),
        author=sa.bindparam("access_author", access.author_id, BIGINT, unique=True),
    )


def visibilities_param() -> Any:
    return param("visibilities", TEXTS)
