"""The outbox: emails and webhook deliveries, written in the transaction of the write
that causes them (so one exists exactly when its write committed) and sent by delivery
workers, which claim due rows with FOR UPDATE SKIP LOCKED so several processes share
the work without two taking the same row.

A row's life: PENDING -> SENDING (claimed, committed before anything is sent) -> SENT,
or back to PENDING with a later `next_attempt_at` after a failure, or DEAD after the
last attempt; SKIPPED when there turned out to be nothing to send. Times come from
clock_timestamp(), not now(): a worker's transaction may be older than the moment
it asks about."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel.ext.asyncio.session import AsyncSession

# Workers LISTEN here; the process that queued deliveries notifies it once the write
# committed (db/wakeups.py).
CHANNEL = "gateway_outbox"
# The flag a session's queued deliveries leave for what runs once it commits.
ENQUEUED = "gateway.enqueued_deliveries"
_PAYLOAD = sa.bindparam("payload", type_=JSONB)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed row. `resumed`: it was claimed before by a worker whose lease ran out
    (it stopped mid-send), so whether that attempt reached the other side is unknown."""

    id: int
    channel: str
    topic: str
    recipient_id: int | None
    webhook_id: int | None
    payload: dict[str, Any]
    attempts: int
    claimed_until: datetime
    resumed: bool


async def _execute(session: AsyncSession, sql: str, **params: Any) -> Any:
    statement = sa.text(sql)
    if ":payload" in sql:
        statement = statement.bindparams(_PAYLOAD)
    return await (await session.connection()).execute(statement, params)


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    topic: str,
    payload: dict[str, Any],
    recipient_id: int | None = None,
    webhook_id: int | None = None,
) -> int:
    result = await _execute(
        session,
        """
        INSERT INTO outbox (channel, topic, recipient_id, webhook_id, payload)
        VALUES (:channel, :topic, :recipient_id, :webhook_id, :payload)
        RETURNING id
        """,
        channel=channel,
        topic=topic,
        recipient_id=recipient_id,
        webhook_id=webhook_id,
        payload=orjson.loads(orjson.dumps(payload)),
    )
    mark_enqueued(session)
    return int(result.scalar_one())


def mark_enqueued(session: AsyncSession, count: int = 1) -> None:
    if count:
        session.info[ENQUEUED] = True


async def claim(
    session: AsyncSession, *, channel: str, worker: str, limit: int, lease_seconds: float
) -> list[Delivery]:
    """Up to `limit` due rows of `channel`, oldest first, now SENDING under `worker`
    until the lease ends; the caller commits before sending any."""
    result = await _execute(
        session,
        """
        UPDATE outbox o
        SET status = 'SENDING', attempts = o.attempts + 1, claimed_by = :worker,
            claimed_until = clock_timestamp() + make_interval(secs => :lease)
        FROM (
          SELECT id, status AS previous FROM outbox
          WHERE channel = :channel AND status IN ('PENDING', 'SENDING')
            AND CASE status WHEN 'PENDING' THEN next_attempt_at <= clock_timestamp()
                            ELSE claimed_until < clock_timestamp() END
          ORDER BY next_attempt_at, id
          LIMIT :limit
          FOR UPDATE SKIP LOCKED
        ) due
        WHERE o.id = due.id
        RETURNING o.id, o.channel, o.topic, o.recipient_id, o.webhook_id, o.payload,
                  o.attempts, o.claimed_until, due.previous = 'SENDING' AS resumed
        """,
        channel=channel,
        worker=worker,
        limit=limit,
        lease=float(lease_seconds),
    )
    rows = sorted(result.all(), key=lambda row: row.id)
    return [
        Delivery(
            id=row.id,
            channel=row.channel,
            topic=row.topic,
            recipient_id=row.recipient_id,
            webhook_id=row.webhook_id,
            payload=dict(row.payload),
            attempts=row.attempts,
            claimed_until=row.claimed_until,
            resumed=bool(row.resumed),
        )
        for row in rows
    ]


_OURS = "id = :id AND claimed_by = :worker AND status = 'SENDING'"


async def mark_sent(session: AsyncSession, delivery_id: int, *, worker: str) -> bool:
    """False when the claim was no longer this worker's (its lease ran out)."""
    result = await _execute(
        session,
        f"""
        UPDATE outbox SET status = 'SENT', sent_at = clock_timestamp(), claimed_until = NULL,
                          last_error = NULL
        WHERE {_OURS}
        """,
        id=delivery_id,
        worker=worker,
    )
    return bool(result.rowcount)


async def mark_skipped(
    session: AsyncSession, delivery_id: int, *, worker: str, reason: str
) -> None:
    await _execute(
        session,
        f"""
        UPDATE outbox SET status = 'SKIPPED', claimed_until = NULL, last_error = :reason
        WHERE {_OURS}
        """,
        id=delivery_id,
        worker=worker,
        reason=reason,
    )


async def mark_failed(
    session: AsyncSession,
    delivery_id: int,
    *,
    worker: str,
    error: str,
    retry_in_seconds: float | None,
) -> None:
    """Back to PENDING for another attempt in `retry_in_seconds`, or DEAD when None."""
    await _execute(
        session,
        f"""
        UPDATE outbox
        SET status = CASE WHEN CAST(:retry AS float8) IS NULL THEN 'DEAD' ELSE 'PENDING' END,
            next_attempt_at = clock_timestamp()
                              + make_interval(secs => coalesce(CAST(:retry AS float8), 0)),
            claimed_until = NULL, claimed_by = NULL, last_error = :error
        WHERE {_OURS}
        """,
        id=delivery_id,
        worker=worker,
        error=error[:2000],
        retry=retry_in_seconds,
    )


async def release(session: AsyncSession, delivery_ids: Sequence[int], *, worker: str) -> None:
    """Hands back claimed rows this worker did not get to (stopping, or its lease is
    running out): PENDING again, the claim's attempt not counted."""
    if not delivery_ids:
        return
    await _execute(
        session,
        """
        UPDATE outbox SET status = 'PENDING', attempts = attempts - 1, claimed_until = NULL,
                          claimed_by = NULL
        WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :worker AND status = 'SENDING'
        """,
        ids=list(delivery_ids),
        worker=worker,
    )


async def dead_letter_pending(session: AsyncSession, *, webhook_id: int, reason: str) -> int:
    """Every undelivered row of a webhook that was disabled."""
    result = await _execute(
        session,
        """
        UPDATE outbox SET status = 'DEAD', last_error = :reason, claimed_until = NULL
        WHERE webhook_id = :webhook_id AND status = 'PENDING'
        """,
        webhook_id=webhook_id,
        reason=reason,
    )
    return int(result.rowcount or 0)


async def delete_finished(session: AsyncSession, *, older_than_days: float) -> int:
    """Forgets SENT, SKIPPED and DEAD rows past the retention period."""
    result = await _execute(
        session,
        """
        DELETE FROM outbox
        WHERE created_at < clock_timestamp() - make_interval(secs => :seconds)
          AND status IN ('SENT', 'SKIPPED', 'DEAD')
        """,
        seconds=older_than_days * 86400.0,
    )
    return int(result.rowcount or 0)


async def counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many rows per (channel, status)."""
    result = await _execute(
        session, "SELECT channel, status, count(*) AS n FROM outbox GROUP BY channel, status"
    )
    return {(row.channel, row.status): int(row.n) for row in result.all()}


async def requeue_dead(session: AsyncSession) -> int:
    """Dead letters get a fresh set of attempts (after the cause was fixed)."""
    result = await _execute(
        session,
        """
        UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = clock_timestamp()
        WHERE status = 'DEAD'
        """,
    )
    return int(result.rowcount or 0)
