"""Webhook endpoints, the deliveries a write queues for them, and their health."""

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db import outbox
from db.tables import Webhook


async def insert_webhook(
    session: AsyncSession, *, url: str, events: Sequence[str], secret: str, created_by: int
) -> Webhook:
    webhook = Webhook(url=url, events=list(events), secret=secret, created_by=created_by)
    session.add(webhook)
    await session.flush()
    await session.refresh(webhook)
    return webhook


async def list_webhooks(session: AsyncSession) -> list[Webhook]:
    return list((await session.exec(select(Webhook).order_by(col(Webhook.id)))).all())


async def get_webhook(session: AsyncSession, webhook_id: int) -> Webhook | None:
    return await session.get(Webhook, webhook_id)


async def delete_webhook(session: AsyncSession, webhook_id: int) -> bool:
    """Its undelivered events go with it (ON DELETE CASCADE)."""
    result = await session.exec(sa.delete(Webhook).where(col(Webhook.id) == webhook_id))
    return bool(result.rowcount)


async def has_subscribers(session: AsyncSession, event: str) -> bool:
    """Whether any active endpoint wants `event`: a write builds a payload only then."""
    statement = select(Webhook.id).where(
        col(Webhook.active), sa.literal(event) == sa.any_(col(Webhook.events))
    )
    return (await session.exec(statement.limit(1))).first() is not None


async def enqueue_event(session: AsyncSession, event: str, payload: dict[str, Any]) -> int:
    """One delivery of `payload` per active endpoint that wants `event`."""
    statement = sa.text(
        """
        INSERT INTO outbox (channel, topic, webhook_id, payload)
        SELECT 'WEBHOOK', :event, id, :payload FROM webhooks
        WHERE active AND :event = ANY(events)
        """
    ).bindparams(sa.bindparam("payload", type_=JSONB))
    result = await (await session.connection()).execute(
        statement, {"event": event, "payload": orjson.loads(orjson.dumps(payload))}
    )
    count = int(result.rowcount or 0)
    outbox.mark_enqueued(session, count)
    return count


async def record_success(session: AsyncSession, webhook_id: int) -> None:
    await session.exec(
        sa.update(Webhook)
        .where(col(Webhook.id) == webhook_id)
        .values(last_delivery_at=sa.func.clock_timestamp(), consecutive_failures=0, last_error=None)
    )


async def record_failure(
    session: AsyncSession, webhook_id: int, *, error: str, disable_after: int
) -> tuple[bool, bool]:
    """Counts a failed attempt; at `disable_after` in a row the endpoint is disabled and
    its waiting deliveries become dead letters. (whether it is still active, whether
    this disabled it)."""
    was_active = (
        await session.exec(select(Webhook.active).where(col(Webhook.id) == webhook_id))
    ).first()
    statement = (
        sa.update(Webhook)
        .where(col(Webhook.id) == webhook_id)
        .values(
            consecutive_failures=col(Webhook.consecutive_failures) + 1,
            last_error=error[:2000],
            active=sa.and_(
                col(Webhook.active), col(Webhook.consecutive_failures) + 1 < disable_after
            ),
        )
        .returning(col(Webhook.active))
    )
    row = (await (await session.connection()).execute(statement)).first()
    active = bool(row is not None and row.active)
    if was_active and not active:
        await outbox.dead_letter_pending(
            session,
            webhook_id=webhook_id,
            reason=f"endpoint disabled after {disable_after} failures",
        )
        return active, True
    return active, False
