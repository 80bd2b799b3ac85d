"""The top of one reader's feed outside any request (what a digest email lists): the
statement of the feed's first page (db/reads/walks.py), so a digest ranks, filters and
explains exactly as the feed does."""

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson

from db.feed.rebuild import rebuild
from db.ranking import RankingWeights
from db.reads.access import ContentAccess
from db.reads.compile import Compiled, compile_statement
from db.reads.shape import FeedStart, Obj, Paged, Scalar, Statement, ViewerKind
from db.reads.sources import page_values, slot_name
from db.session import Database


@dataclass(frozen=True, slots=True)
class TopItem:
    content_id: int
    published_at: datetime
    score: float
    # What the feed words its reasons from (resolvers/ranking.py Facts.of).
    facts: list[Any]


_ITEM = Obj("content", (Scalar("row_id", "row_id"), Scalar("published_at", "published_at")))


# A memo of a pure function, bounded by the viewer kinds times the ranking weights a
# process is configured with.
@cache
def _statement(kind: ViewerKind, weights: RankingWeights) -> Compiled:
    page = Paged("feed", FeedStart(0, signed_in=True, store=False, reasons=True), _ITEM)
    return compile_statement(Statement(kind, (page,)), weights)


async def top_of_feed(
    db: Database,
    viewer_id: int,
    kind: ViewerKind,
    access: ContentAccess,
    weights: RankingWeights,
    *,
    first: int,
    bucket: str,
    now: datetime,
) -> list[TopItem]:
    """The first `first` items of the viewer's feed as it ranks them now (`bucket`
    names `now`'s minute's shared list of members); a stored feed that is missing or stale
    is rebuilt first, as a visit would. Like a visit, it keeps the viewer's stored feed
    active (GATEWAY_RANK_INACTIVE_DAYS): a digest is read as a feed is."""
    compiled = _statement(kind, weights)
    values: dict[str, Any] = {
        "viewer": viewer_id,
        "now": now,
        **access.values(),
        **page_values(0, first),
        slot_name(0, "bucket"): bucket,
        slot_name(0, "head"): first + weights.live_margin,
    }
    for attempt in range(2):
        rows = await db.fetch(compiled.sql, *compiled.arguments(values), primary=True)
        (page,) = orjson.loads(rows[0][0])
        if page["fresh"] or attempt:
            break
        await rebuild(db, viewer_id, weights)
    return [
        TopItem(
            content_id=item["row_id"],
            published_at=datetime.fromisoformat(item["published_at"]),
            score=float(score),
            facts=facts,
        )
        for _position, score, facts, item in page["rows"][:first]
    ]
