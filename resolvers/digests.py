"""Digests: a reader's top-ranked new items and unread notifications since their last
digest, composed by the delivery worker when one is due."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db import email_settings as queries
from db.email_settings import SETTING_OF_KIND, DueDigest
from db.queries.feed import rank_feed
from db.tables import EmailSettings
from resolvers import policy, ranking
from resolvers.email_settings import DIGEST_PERIODS
from resolvers.feed import factors_of, feed_weights
from resolvers.viewer import Viewer

MAX_NOTIFICATIONS = 20


@dataclass(frozen=True, slots=True)
class RankedItem:
    content_id: int
    score: float
    reasons: list[str]


async def top_new_items(
    session: AsyncSession,
    *,
    viewer: Viewer,
    since: datetime,
    now: datetime,
    weights: ranking.RankingWeights,
    limit: int,
) -> list[RankedItem]:
    """The viewer's best-ranked items published after `since`, as their feed ranks them
    (the feed's access rules, mutes and languages apply, their own content is left out).
    The one place digests ask the feed's ranking."""
    rows = await rank_feed(
        session,
        viewer_id=viewer.id,
        access=policy.content_filter(viewer),
        now=now,
        weights=feed_weights(weights),
    )
    return [
        RankedItem(row.content_id, row.score, ranking.reasons(factors_of(row, weights), now))
        for row in rows
        if row.published_at > since
    ][:limit]


async def build_digest(
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
        session,
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
