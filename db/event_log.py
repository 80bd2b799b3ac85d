"""The event log: what happened (content published, a notification written, tokens
revoked), appended by each write in its own transaction, so an event exists exactly when
its write committed; gateway processes follow it (db/log_follower.py) and clients resume
from a position in it.

A position is (tx, id): the appending transaction's id, then the row's. Transaction ids
are handed out in order, but transactions commit in any order, so a reader takes only
rows of transactions older than every transaction still running (the snapshot's xmin):
those are final, and whatever commits later has a larger tx, so it comes after every
position already read. Nothing is skipped and nothing reordered, at the price of
waiting for the oldest running transaction (docs/live-updates.md, "Limits").

Retention: rows older than an age, or beyond a count, are pruned; the horizon is the
newest position pruned, and a position before it can no longer be resumed."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

Position = tuple[int, int]
START: Position = (0, 0)

# Flags a session's writes leave for what runs once it commits (db/session.py).
APPENDED = "gateway.appended_events"
# Set on sessions of a gateway whose writes append no events (GATEWAY_EVENTS=false).
EVENTS_OFF = "gateway.events_off"

# xid8 as a bigint: 64 bits hold any transaction id a server reaches.
_TX = "pg_current_xact_id()::text::bigint"
_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# Lets one process prune at a time (pg_try_advisory_xact_lock).
PRUNE_LOCK = 0x6576_656E_745F_6C6F  # "event_lo"


class LoggedEventRow(SQLModel, table=True):
    __tablename__ = "event_log"

    tx: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))


class EventLogHorizon(SQLModel, table=True):
    """One row: the newest position pruned."""

    __tablename__ = "event_log_horizon"
    __table_args__ = (sa.CheckConstraint("one", name="event_log_horizon_one_row"),)

    one: bool = Field(
        default=True,
        sa_column=sa.Column(sa.Boolean, primary_key=True, server_default=sa.true()),
    )
    tx: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    id: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    position: Position
    kind: str
    body: dict[str, Any]


_APPEND = sa.text(
    f"INSERT INTO event_log (tx, kind, body) VALUES ({_TX}, :kind, CAST(:body AS jsonb))"
)


def recording(session: AsyncSession) -> bool:
    return not session.info.get(EVENTS_OFF, False)


async def append(session: AsyncSession, kind: str, body: dict[str, Any]) -> None:
    """Appends an event to the session's transaction: it exists once that commits."""
    if not recording(session):
        return
    await (await session.connection()).execute(
        _APPEND, {"kind": kind, "body": orjson.dumps(body).decode()}
    )
    session.info[APPENDED] = True


def appended_sql(session: AsyncSession, kind: str, body_sql: str, source: str) -> str:
    """An INSERT of one event per row of `source` (a CTE name), `body_sql` building each
    body from its row, for writes that make many events in one statement (nothing, when
    the session records no events). The caller flags the session with `mark_appended`."""
    if not recording(session):
        return "SELECT 1"
    return (
        f"INSERT INTO event_log (tx, kind, body) SELECT {_TX}, '{kind}', {body_sql} FROM {source}"
    )


def mark_appended(session: AsyncSession) -> None:
    if recording(session):
        session.info[APPENDED] = True


def _events(rows: Any) -> list[LoggedEvent]:
    return [LoggedEvent((tx, id_), kind, orjson.loads(body)) for tx, id_, kind, body in rows]


# The horizon, whether events after a position wait for older transactions to end, and
# the final events after it (up to a position, when given), in order. One snapshot: a
# horizon no later than the position means none of those events was pruned.
_READ = f"""
SELECT h.tx, h.id,
  EXISTS (SELECT 1 FROM event_log w WHERE w.tx >= {_XMIN} AND (w.tx, w.id) > ($1, $2)),
  e.tx, e.id, e.kind, e.body::text
FROM event_log_horizon h
LEFT JOIN LATERAL (
  SELECT tx, id, kind, body FROM event_log
  WHERE (tx, id) > ($1, $2) AND tx < {_XMIN}
    AND ($4::bigint IS NULL OR (tx, id) <= ($4, $5))
  ORDER BY tx, id
  LIMIT $3
) e ON true
ORDER BY e.tx, e.id
"""


@dataclass(frozen=True, slots=True)
class Read:
    horizon: Position
    events: list[LoggedEvent]
    # Events after these exist that wait for an older transaction to end.
    waiting: bool


async def read_after(
    fetch: Any, position: Position, *, limit: int, until: Position | None = None
) -> Read:
    """`fetch` is Database.fetch (or an asyncpg connection's): the final events after
    `position` (and up to `until`), at most `limit`, with the horizon."""
    upto = until or (None, None)
    rows = await fetch(_READ, position[0], position[1], limit, upto[0], upto[1])
    horizon = (int(rows[0][0]), int(rows[0][1]))
    events = [r[3:] for r in rows if r[3] is not None]
    return Read(horizon, _events(events), bool(rows[0][2]))


async def start_position(fetch: Any) -> Position:
    """Where a follower starting now begins: every final event lies before it, and
    every event still to become final after it."""
    rows = await fetch(f"SELECT {_XMIN}")
    return (int(rows[0][0]), 0)


async def prune(
    session: AsyncSession, *, max_age: timedelta, max_events: int
) -> tuple[Position, int] | None:
    """Deletes final events older than `max_age` or beyond the newest `max_events`, and
    moves the horizon past them: the new horizon and how many were deleted, or None when
    another process is pruning."""
    conn = await session.connection()
    locked = await conn.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PRUNE_LOCK}
    )
    if not locked:
        return None
    candidates: list[Sequence[Any]] = []
    by_count = await conn.execute(
        sa.text(
            f"SELECT tx, id FROM event_log WHERE tx < {_XMIN}"
            " ORDER BY tx DESC, id DESC OFFSET :keep LIMIT 1"
        ),
        {"keep": max_events},
    )
    candidates.extend(by_count.all())
    by_age = await conn.execute(
        sa.text(
            f"SELECT tx, id FROM event_log WHERE tx < {_XMIN}"
            " AND created_at < now() - CAST(:age AS interval) ORDER BY tx DESC, id DESC LIMIT 1"
        ),
        {"age": max_age},
    )
    candidates.extend(by_age.all())
    current = (await conn.execute(sa.text("SELECT tx, id FROM event_log_horizon"))).one()
    horizon: Position = max(
        [(int(current[0]), int(current[1]))] + [(int(t), int(i)) for t, i in candidates]
    )
    deleted = await conn.execute(
        sa.text("DELETE FROM event_log WHERE (tx, id) <= (:tx, :id)"),
        {"tx": horizon[0], "id": horizon[1]},
    )
    await conn.execute(
        sa.text("UPDATE event_log_horizon SET tx = :tx, id = :id"),
        {"tx": horizon[0], "id": horizon[1]},
    )
    return horizon, int(deleted.rowcount)
