"""SQL for the rate-limit buckets every gateway process shares (db/tables.py
RateLimitBucket); gateway/shared_rate_limits.py decides when to call it."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

# What is left of each key's budget now: refilled since its last update, at most full.
_LOAD = sa.text(
    "SELECT key, LEAST(:capacity, tokens + :refill * extract(epoch FROM now() - updated_at))"
    " AS tokens FROM rate_limit_buckets WHERE key = ANY(CAST(:keys AS text[]))"
)

# Refill each bucket to now, take what the caller spent since it last settled, and say
# what is left. A debt (negative tokens) is kept, down to one full budget, so a burst
# several processes let through together is paid back by waiting.
_SPEND = sa.text(
    "INSERT INTO rate_limit_buckets AS b (key, tokens, updated_at)"
    " SELECT key, GREATEST(-CAST(:capacity AS float8), :capacity - spent), now()"
    " FROM unnest(CAST(:keys AS text[]), CAST(:spent AS float8[])) AS t(key, spent)"
    " ON CONFLICT (key) DO UPDATE SET"
    " tokens = GREATEST(-CAST(:capacity AS float8), LEAST(:capacity, b.tokens + :refill"
    " * extract(epoch FROM now() - b.updated_at)) - (:capacity - excluded.tokens)),"
    " updated_at = now()"
    " RETURNING key, tokens"
)

# Idle long enough to have refilled completely: the row says nothing a missing row
# does not.
_FORGET = sa.text(
    "DELETE FROM rate_limit_buckets WHERE updated_at < now()"
    " - make_interval(secs => CAST(:capacity AS float8) / CAST(:refill AS float8) + 60)"
)


async def load_buckets(
    session: AsyncSession, keys: Sequence[str], *, capacity: float, refill: float
) -> dict[str, float]:
    """Tokens left now for the keys that have a row; absent keys are full."""
    rows = await (await session.connection()).execute(
        _LOAD, {"keys": list(keys), "capacity": capacity, "refill": refill}
    )
    return {str(key): float(tokens) for key, tokens in rows}


async def spend(
    session: AsyncSession,
    spent: dict[str, float],
    *,
    capacity: float,
    refill: float,
) -> dict[str, float]:
    """Takes `spent[key]` from each key's bucket; the tokens each has left after."""
    rows = await (await session.connection()).execute(
        _SPEND,
        {
            "keys": list(spent),
            "spent": list(spent.values()),
            "capacity": capacity,
            "refill": refill,
        },
    )
    return {str(key): float(tokens) for key, tokens in rows}


async def forget_full(session: AsyncSession, *, capacity: float, refill: float) -> None:
    await (await session.connection()).execute(_FORGET, {"capacity": capacity, "refill": refill})
