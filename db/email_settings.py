"""Who gets which email: per-kind choices, the digest schedule, and the notification
emails a write queues in its own transaction."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.outbox import mark_enqueued
from db.outreach_tables import DEFAULT_EMAIL_CHOICES
from db.tables import EmailSettings, Notification

# The setting that decides each notification kind's email.
SETTING_OF_KIND = {
    "NEW_FOLLOWER": "new_follower",
    "REACTION": "reaction",
    "NEW_CONTENT_FROM_FOLLOWED": "new_content_from_followed",
}
_NOW = sa.func.clock_timestamp()


def _after(period: timedelta) -> sa.ColumnElement[datetime]:
    return _NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, period.total_seconds())


async def get_email_settings(session: AsyncSession, user_id: int) -> EmailSettings:
    """The stored settings, or the defaults (not stored) for a user who never chose."""
    found = await session.get(EmailSettings, user_id)
    return found if found is not None else EmailSettings(user_id=user_id)


async def save_email_settings(
    session: AsyncSession,
    user_id: int,
    *,
    choices: Mapping[str, str],
    digest: str | None = None,
    digest_period: timedelta | None = None,
) -> None:
    """Sets the given choices (setting name -> value). A digest switched on (or to
    another frequency) comes one `digest_period` from now; switched off, never."""
    await session.exec(insert(EmailSettings).values(user_id=user_id).on_conflict_do_nothing())
    row = (
        await session.exec(
            select(EmailSettings).where(col(EmailSettings.user_id) == user_id).with_for_update()
        )
    ).one()
    values: dict[str, object] = {name: value for name, value in choices.items()}
    if digest is not None and digest != row.digest:
        values["digest"] = digest
        values["next_digest_at"] = (
            None if digest == "OFF" or digest_period is None else _after(digest_period)
        )
    values["updated_at"] = sa.func.now()
    await session.exec(
        sa.update(EmailSettings).where(col(EmailSettings.user_id) == user_id).values(**values)
    )
    await session.refresh(row)


async def enqueue_notification_emails(
    session: AsyncSession, notification_ids: Sequence[int]
) -> int:
    """Queues an email for each of the notifications whose recipient has a verified
    address and wants that kind IMMEDIATELY; one statement however many there are."""
    if not notification_ids:
        return 0
    statement = sa.text(
        """
        INSERT INTO outbox (channel, topic, recipient_id, payload)
        SELECT 'EMAIL', 'notification', n.recipient_id, jsonb_build_object('notification', n.id)
        FROM notifications n
        JOIN users u ON u.id = n.recipient_id AND u.email_verified_at IS NOT NULL
        LEFT JOIN email_settings s ON s.user_id = n.recipient_id
        WHERE n.id = ANY(CAST(:ids AS bigint[]))
          AND CASE n.kind
                WHEN 'NEW_FOLLOWER' THEN coalesce(s.new_follower, :new_follower)
                WHEN 'REACTION' THEN coalesce(s.reaction, :reaction)
                WHEN 'NEW_CONTENT_FROM_FOLLOWED'
                  THEN coalesce(s.new_content_from_followed, :new_content_from_followed)
              END = 'IMMEDIATELY'
        """
    )
    result = await (await session.connection()).execute(
        statement, {"ids": list(notification_ids), **DEFAULT_EMAIL_CHOICES}
    )
    count = int(result.rowcount or 0)
    mark_enqueued(session, count)
    return count


@dataclass(frozen=True, slots=True)
class DueDigest:
    user_id: int
    role: str
    frequency: str
    last_digest_at: datetime | None


async def due_digests(
    session: AsyncSession, *, limit: int, everyone: bool, after_user_id: int = 0
) -> list[DueDigest]:
    """Verified users whose digest is due (every enabled one with `everyone`), by user
    id after `after_user_id`, locked until the transaction ends so two workers never
    compose the same digest."""
    statement = sa.text(
        """
        SELECT s.user_id, u.role, s.digest, s.last_digest_at
        FROM email_settings s JOIN users u ON u.id = s.user_id
        WHERE s.digest <> 'OFF' AND u.email_verified_at IS NOT NULL AND s.user_id > :after
          AND (CAST(:everyone AS boolean) OR s.next_digest_at <= clock_timestamp())
        ORDER BY s.user_id
        LIMIT :limit
        FOR UPDATE OF s SKIP LOCKED
        """
    )
    result = await (await session.connection()).execute(
        statement, {"after": after_user_id, "everyone": everyone, "limit": limit}
    )
    return [
        DueDigest(
            user_id=row.user_id,
            role=row.role,
            frequency=row.digest,
            last_digest_at=row.last_digest_at,
        )
        for row in result.all()
    ]


async def finish_digest(
    session: AsyncSession, user_id: int, *, window_end: datetime | None, period: timedelta
) -> None:
    """Schedules the next digest; `window_end` (when one was sent) starts its window."""
    values: dict[str, object] = {"next_digest_at": _after(period)}
    if window_end is not None:
        values["last_digest_at"] = window_end
    await session.exec(
        sa.update(EmailSettings).where(col(EmailSettings.user_id) == user_id).values(**values)
    )


async def digest_notifications(
    session: AsyncSession,
    user_id: int,
    *,
    since: datetime,
    kinds: Sequence[str],
    limit: int,
) -> list[Notification]:
    """Unread notifications of `kinds` since `since`, newest first."""
    if not kinds:
        return []
    statement = (
        select(Notification)
        .where(
            col(Notification.recipient_id) == user_id,
            col(Notification.read_at).is_(None),
            col(Notification.created_at) > since,
            col(Notification.kind).in_(kinds),
        )
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    return list((await session.exec(statement)).all())


async def notifications_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Notification]:
    rows = await session.exec(select(Notification).where(col(Notification.id).in_(ids)))
    return list(rows.all())
