"""Throttle buckets in Postgres, shared by every gateway process (resolvers/throttle.py
says what is limited).

Each key holds one time, `tat`: when its bucket will be empty again (the generic cell
rate algorithm). An attempt moves it one interval later, and is refused when that would
put it more than the bucket's window ahead of now. So: one timestamp per key, one
statement per attempt whatever the number of buckets, the database's clock for every
process, and no way for concurrent attempts to slip past the limit together. The clock is
statement_timestamp(), not now(): a transaction's now() stands still."""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass(frozen=True, slots=True)
class Charge:
    key: str
    interval: float  # seconds one attempt adds
    window: float  # seconds of attempts the bucket holds


# Rows whose time has passed say nothing any more; every charge deletes a few.
_FORGET = """forgotten AS (
  DELETE FROM auth_throttle WHERE key IN (
    SELECT key FROM auth_throttle
    WHERE tat < statement_timestamp() AND key <> ALL(CAST(:keys AS text[]))
    LIMIT 100 FOR UPDATE SKIP LOCKED
  )
)"""

_TAKE_ONE = """take_{n} AS (
  INSERT INTO auth_throttle AS t (key, tat)
  VALUES (:key_{n}, statement_timestamp() + make_interval(secs => :interval_{n}))
  ON CONFLICT (key) DO UPDATE
  SET tat = greatest(t.tat, statement_timestamp()) + make_interval(secs => :interval_{n})
  WHERE greatest(t.tat, statement_timestamp()) + make_interval(secs => :interval_{n})
        <= statement_timestamp() + make_interval(secs => :window_{n})
  RETURNING key
)"""

_BACKLOG = sa.text(
    "SELECT key, extract(epoch FROM tat - statement_timestamp())::float8 FROM auth_throttle"
    " WHERE key = ANY(CAST(:keys AS text[])) AND tat > statement_timestamp()"
)

_REFUND = sa.text(
    "UPDATE auth_throttle t SET tat = t.tat - make_interval(secs => r.interval)"
    " FROM unnest(CAST(:keys AS text[]), CAST(:intervals AS float8[])) AS r(key, interval)"
    " WHERE t.key = r.key"
)


async def take(session: AsyncSession, charges: Sequence[Charge]) -> list[bool]:
    """One attempt on each bucket that has room for it; for each, whether it had."""
    keys = [charge.key for charge in charges]
    params: dict[str, object] = {"keys": keys}
    parts = [_FORGET]
    for n, charge in enumerate(charges):
        parts.append(_TAKE_ONE.format(n=n))
        params |= {f"key_{n}": charge.key, f"interval_{n}": charge.interval}
        params[f"window_{n}"] = charge.window
    taken = ", ".join(f"EXISTS (SELECT FROM take_{n})" for n in range(len(charges)))
    statement = sa.text(f"WITH {', '.join(parts)} SELECT {taken}")
    row = (await session.exec(statement, params=params)).one()  # type: ignore[call-overload]
    return [bool(value) for value in row]


async def refund(session: AsyncSession, charges: Sequence[Charge]) -> None:
    """Gives back one attempt taken from each bucket."""
    params = {"keys": [c.key for c in charges], "intervals": [c.interval for c in charges]}
    await session.exec(_REFUND, params=params)  # type: ignore[call-overload]


async def backlogs(session: AsyncSession, keys: Sequence[str]) -> dict[str, float]:
    """Seconds until each key's bucket is empty; keys already empty are left out."""
    rows = await session.exec(_BACKLOG, params={"keys": list(keys)})  # type: ignore[call-overload]
    return {key: float(seconds) for key, seconds in rows.all()}
