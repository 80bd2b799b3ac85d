"""Deterministic demo data, bulk-loaded with COPY.

The same plan (users, contents, seed, reference time) always writes byte-identical
rows: every random choice comes from a stream seeded by the plan, and every
timestamp lies before the plan's reference time rather than the wall clock.

Seeding fills an empty database only (DatabaseNotEmpty otherwise) and writes
explicit ids from 1, moving the identity sequences past them afterwards. It runs
as one transaction: a failure leaves the database as empty as it was.

The demo accounts share DEMO_PASSWORD: ada (ADMIN, the busiest author), grace and
alan (MEMBERs). A few other users, about 1 in 2,000, are ADMINs too.
"""

from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher, low_level

from db.embedded import asyncpg_dsn
from db.seed.base import REFERENCE_TIME, Progress, SeedPlan, Ticker, stream
from db.seed.catalogue import (
    CONTENT_COLUMNS,
    CONTENT_TAG_COLUMNS,
    REACTION_COLUMNS,
    TAG_COLUMNS,
    Catalogue,
    content_rows,
    content_tag_rows,
    reaction_rows,
    tag_rows,
)
from db.seed.population import (
    DEMO_EMAIL_DOMAIN,
    DEMO_USERS,
    FOLLOW_COLUMNS,
    USER_COLUMNS,
    build_population,
    follow_rows,
    preference_rows,
    user_rows,
)
from db.seed.schema import (
    SEEDED_TABLES,
    DatabaseNotEmpty,
    advance_identities,
    lock_empty_tables,
    restore,
    set_aside,
    set_feed_triggers,
    set_trigger,
    write_notifications,
)
from db.seed.words import DEMO_PASSWORD

__all__ = [
    "DEMO_PASSWORD",
    "REFERENCE_TIME",
    "DatabaseNotEmpty",
    "DemoLogin",
    "Progress",
    "SeedPlan",
    "SeedReport",
    "is_empty",
    "seed_database",
]


# For the index builds after the load, this transaction only. Measured on a million
# contents: the search index builds ~10% faster than with the 64MB default; 1GB
# gains nothing more.
MAINTENANCE_WORK_MEM = "256MB"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    handle: str
    email: str
    password: str


@dataclass(frozen=True, slots=True)
class SeedReport:
    users: int
    contents: int
    tags: int
    content_tags: int
    follows: int
    reactions: int
    preferences: int
    notifications: int
    demo_logins: list[DemoLogin]


def password_hash(plan: SeedPlan) -> str:
    """One argon2id hash shared by every seeded user: hashing per user would take
    longer than the rest of the seed. The salt comes from the plan so the rows stay
    identical between runs; that is fine for a password everybody knows anyway."""
    hasher = PasswordHasher()
    encoded: bytes = low_level.hash_secret(
        DEMO_PASSWORD.encode(),
        stream(plan, "password").randbytes(hasher.salt_len),
        time_cost=hasher.time_cost,
        memory_cost=hasher.memory_cost,
        parallelism=hasher.parallelism,
        hash_len=hasher.hash_len,
        type=hasher.type,
    )
    return encoded.decode()


async def is_empty(url: str) -> bool:
    """Whether the database has no users yet: the CLI seeds only then."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return bool(await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM users)"))
    finally:
        await conn.close()


async def seed_database(
    url: str, plan: SeedPlan, *, progress: Progress | None = None
) -> SeedReport:
    hashed = password_hash(plan)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction():
            report = await _seed(conn, plan, hashed, progress)
        # VACUUM cannot run in the seed's transaction. Without it the new pages are not
        # marked all-visible, index-only scans fetch the heap for every row until
        # autovacuum's first pass, and the first minutes get other plans than the rest.
        ticker = Ticker(progress, "vacuum", 1)
        await conn.execute("SET statement_timeout = 0")
        await conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}", timeout=None)
        ticker.finish()
        return report
    finally:
        await conn.close()


async def _copy(
    conn: asyncpg.Connection, table: str, columns: tuple[str, ...], rows: object
) -> int:
    status: str = await conn.copy_records_to_table(table, records=rows, columns=list(columns))
    return int(status.split()[-1])


async def _seed(
    conn: asyncpg.Connection, plan: SeedPlan, hashed: str, progress: Progress | None
) -> SeedReport:
    await conn.execute("SET LOCAL statement_timeout = 0")
    await conn.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
    await lock_empty_tables(conn)
    aside = await set_aside(conn)
    await set_feed_triggers(conn, enabled=False)

    population = build_population(plan)
    ticker = Ticker(progress, "users", plan.users)
    users = await _copy(conn, "users", USER_COLUMNS, user_rows(population, hashed, ticker))
    ticker.finish()
    tags = await _copy(conn, "tags", TAG_COLUMNS, tag_rows(plan))
    Ticker(progress, "tags", tags).finish()

    catalogue = Catalogue()
    ticker = Ticker(progress, "contents", plan.contents)
    contents = await _copy(
        conn, "contents", CONTENT_COLUMNS, content_rows(population, catalogue, ticker)
    )
    ticker.finish()
    ticker = Ticker(progress, "content_tags", len(catalogue.tags))
    content_tags = await _copy(
        conn, "content_tags", CONTENT_TAG_COLUMNS, content_tag_rows(catalogue, ticker)
    )
    ticker.finish()
    ticker = Ticker(progress, "follows", plan.users)
    follows = await _copy(conn, "follows", FOLLOW_COLUMNS, follow_rows(population, ticker))
    ticker.finish()

    # reaction_count was written with the contents, so the per-row trigger that
    # keeps it would only double-count; it is off for this COPY alone.
    ticker = Ticker(progress, "reactions", catalogue.reaction_total)
    await set_trigger(conn, enabled=False)
    reactions = await _copy(
        conn, "reactions", REACTION_COLUMNS, reaction_rows(population, catalogue, ticker)
    )
    await set_trigger(conn, enabled=True)
    ticker.finish()
    del catalogue

    ticker = Ticker(progress, "preferences", plan.users)
    prefs = preference_rows(population, ticker)
    preferences = await _copy(
        conn, "preferences", ("user_id", "languages", "updated_at"), prefs.preferences
    )
    await _copy(conn, "followed_tags", ("user_id", "tag_id", "weight"), prefs.followed_tags)
    await _copy(conn, "muted_tags", ("user_id", "tag_id"), prefs.muted_tags)
    await _copy(conn, "muted_authors", ("user_id", "author_id"), prefs.muted_authors)
    ticker.finish()

    ticker = Ticker(progress, "notifications", 1)
    notifications = await write_notifications(conn, plan)
    ticker.finish()

    ticker = Ticker(progress, "indexes", aside.size, every=1)
    await restore(conn, aside, ticker.step)
    ticker.finish()
    await set_feed_triggers(conn, enabled=True)
    await advance_identities(conn)

    return SeedReport(
        users=users,
        contents=contents,
        tags=tags,
        content_tags=content_tags,
        follows=follows,
        reactions=reactions,
        preferences=preferences,
        notifications=notifications,
        demo_logins=[
            DemoLogin(handle=handle, email=f"{handle}@{DEMO_EMAIL_DOMAIN}", password=DEMO_PASSWORD)
            for handle, _, _ in DEMO_USERS[: plan.users]
        ],
    )
