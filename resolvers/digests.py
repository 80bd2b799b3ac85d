"""Digests: a reader's top-ranked new items and unread notifications since their last
digest, composed by the delivery worker when one is due."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db import email_settings as queries
from db.email_settings import SETTING_OF_KIND, DueDigest
from db.feed.digest import top_of_feed
from db.reads.shape import ViewerKind
from db.session import Database
from db.tables import EmailSettings
from resolvers import policy, ranking
from resolvers.email_settings import DIGEST_PERIODS
from resolvers.feed import bucket
from resolvers.viewer import Viewer

MAX_NOTIFICATIONS = 20
# How far down the feed a digest looks for what is new since the last one.
FEED_DEPTH = 100


@dataclass(frozen=True, slots=True)
class RankedItem:
    content_id: int
    score: float
    reasons: list[str]


async def top_new_items(
    db: Database,
    *,
    viewer: Viewer,
    since: datetime,
    now: datetime,
    weights: ranking.RankingWeights,
    limit: int,
) -> list[RankedItem]:
    """The viewer's best-ranked items published after `since`, in their feed's order
    (the feed's access rules, mutes and languages apply; their own content is left out).
    The one place digests ask the feed's ranking."""
    assert viewer.id is not None
    kind = ViewerKind.ADMIN if viewer.is_admin else ViewerKind.MEMBER
    top = await top_of_feed(
        db,
        viewer.id,
        kind,
        policy.content_filter(viewer),
        weights,
        first=max(FEED_DEPTH, limit),
        bucket=bucket("members", now),
        now=now,
    )
    return [
        RankedItem(item.content_id, item.score, ranking.reasons(ranking.Facts.of(item.facts), now))
        for item in top
        if item.published_at > since
    ][:limit]


async def build_digest(
    db: Database,
    session: AsyncSession,
    due: DueDigest,
    *,
    now: datetime,
    weights: ranking.RankingWeights,
    limit: int,
) -> dict[str, Any] | None:
    """What the digest email will hold (ids, ranked), or None when nothing is new."""
    since = due.last_digest_at or now - DIGEST_PERIODS[due.frequency]
    items = await top_new_items(
        db,
        viewer=Viewer(id=due.user_id, role=due.role),
        since=since,
        now=now,
        weights=weights,
        limit=limit,
    )
    settings = await queries.get_email_settings(session, due.user_id)
    kinds = [kind for kind, name in SETTING_OF_KIND.items() if _choice(settings, name) == "DIGEST"]
    notifications = await queries.digest_notifications(
        session, due.user_id, since=since, kinds=kinds, limit=MAX_NOTIFICATIONS
    )
    if not items and not notifications:
        return None
    return {
        "since": since.isoformat(),
        "until": now.isoformat(),
        "frequency": due.frequency,
        "items": [[item.content_id, item.score, item.reasons] for item in items],
        "notifications": [n.id for n in notifications],
    }


def _choice(settings: EmailSettings, name: str) -> str:
    return str(getattr(settings, name))
