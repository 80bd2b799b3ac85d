"""The SQL side of a bulk load: locking, setting indexes and constraints aside and
putting them back exactly as they were, and the rows derived inside Postgres."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from db.seed.base import DAY, SeedPlan

# Every table the seed writes, in an order that satisfies the foreign keys.
SEEDED_TABLES = (
    "users", "tags", "contents", "content_tags", "follows", "reactions", "preferences",
    "followed_tags", "muted_tags", "muted_authors", "notifications",
)  # fmt: skip
IDENTITY_TABLES = ("users", "tags", "contents", "notifications")
REACTION_TRIGGER = "reactions_count_trigger"
# Triggers that queue feed work (migration 0004). A seeded database has no stored feeds
# yet (each viewer's is built on their first visit), so there is nothing to queue.
FEED_TRIGGERS = (
    ("contents", "contents_feed_trigger"),
    ("content_tags", "content_tags_feed_trigger"),
    ("follows", "follows_feed_trigger"),
    ("preferences", "preferences_feed_trigger"),
    ("followed_tags", "followed_tags_feed_trigger"),
    ("muted_tags", "muted_tags_feed_trigger"),
    ("muted_authors", "muted_authors_feed_trigger"),
    ("reactions", "reactions_feed_trigger"),
)


class DatabaseNotEmpty(Exception):
    """Seeding only fills an empty database: appending demo rows to real ones would
    clash on handles and make the result depend on what was there before."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__("refusing to seed: the database already has rows in " + ", ".join(tables))
        self.tables = tables


@dataclass(frozen=True, slots=True)
class Constraint:
    table: str
    name: str
    definition: str
    foreign: bool


@dataclass(frozen=True, slots=True)
class SetAside:
    """What `set_aside` dropped, with the definitions Postgres itself printed."""

    indexes: list[tuple[str, str]]  # (name, CREATE INDEX ...)
    constraints: list[Constraint]

    @property
    def size(self) -> int:
        return len(self.indexes) + len(self.constraints)


async def lock_empty_tables(conn: asyncpg.Connection) -> None:
    # The lock makes the emptiness check and the load one step: a second process
    # seeding at the same time waits here, then finds the rows and refuses.
    await conn.execute(f"LOCK TABLE {', '.join(SEEDED_TABLES)} IN ACCESS EXCLUSIVE MODE")
    filled = [
        table
        for table in SEEDED_TABLES
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})")
    ]
    if filled:
        raise DatabaseNotEmpty(filled)


async def set_aside(conn: asyncpg.Connection) -> SetAside:
    """Drop secondary indexes, keys and foreign keys of the seeded tables.

    Building an index once over sorted data, and checking a foreign key with one
    join, is several times faster than maintaining them row by row during COPY.
    Foreign keys from other tables into these are included, since dropping a
    primary key needs them gone first."""
    tables = list(SEEDED_TABLES)
    index_rows = await conn.fetch(
        """
        SELECT ci.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        JOIN pg_class ci ON ci.oid = i.indexrelid
        JOIN pg_class ct ON ct.oid = i.indrelid
        WHERE ct.relnamespace = 'public'::regnamespace AND ct.relname = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY ct.relname, ci.relname
        """,
        tables,
    )
    constraint_rows = await conn.fetch(
        """
        SELECT t.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition,
               k.contype = 'f' AS foreign
        FROM pg_constraint k
        JOIN pg_class t ON t.oid = k.conrelid
        LEFT JOIN pg_class r ON r.oid = k.confrelid
        WHERE t.relnamespace = 'public'::regnamespace
          AND (t.relname = ANY($1::text[]) AND k.contype IN ('p', 'u', 'f')
               OR k.contype = 'f' AND r.relnamespace = 'public'::regnamespace
                  AND r.relname = ANY($1::text[]))
        ORDER BY k.contype = 'f' DESC, t.relname, k.conname
        """,
        tables,
    )
    aside = SetAside(
        indexes=[(row["name"], row["definition"]) for row in index_rows],
        constraints=[Constraint(**dict(row)) for row in constraint_rows],
    )
    for name, _ in aside.indexes:
        await conn.execute(f"DROP INDEX public.{_ident(name)}")
    for constraint in aside.constraints:  # foreign keys first, then the keys they use
        await conn.execute(
            f"ALTER TABLE public.{_ident(constraint.table)} DROP CONSTRAINT {_ident(constraint.name)}"
        )
    return aside


async def restore(conn: asyncpg.Connection, aside: SetAside, step: Callable[[], None]) -> None:
    """Recreate what set_aside dropped: keys, then foreign keys, then indexes."""
    for constraint in reversed(aside.constraints):
        await conn.execute(
            f"ALTER TABLE public.{_ident(constraint.table)}"
            f" ADD CONSTRAINT {_ident(constraint.name)} {constraint.definition}"
        )
        step()
    for _, definition in aside.indexes:
        await conn.execute(definition)
        step()


async def set_trigger(conn: asyncpg.Connection, *, enabled: bool) -> None:
    action = "ENABLE" if enabled else "DISABLE"
    await conn.execute(f"ALTER TABLE reactions {action} TRIGGER {REACTION_TRIGGER}")


async def set_feed_triggers(conn: asyncpg.Connection, *, enabled: bool) -> None:
    action = "ENABLE" if enabled else "DISABLE"
    for table, trigger in FEED_TRIGGERS:
        await conn.execute(f"ALTER TABLE {table} {action} TRIGGER {trigger}")


async def advance_identities(conn: asyncpg.Connection) -> None:
    """Rows were written with explicit ids; move each identity past them."""
    for table in IDENTITY_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'), max(id))"
            f" FROM {table} HAVING max(id) IS NOT NULL"
        )


# Notifications are derived from the follows, reactions and contents already
# loaded, so they always agree with them. Each recipient keeps at most 20 of the
# most recent; all but the newest three are marked read two hours after arrival.
NOTIFICATIONS_SQL = """
INSERT INTO notifications (id, recipient_id, kind, actor_id, content_id, created_at, read_at)
SELECT row_number() OVER (ORDER BY created_at, recipient_id, kind, actor_id, content_id),
       recipient_id, kind, actor_id, content_id, created_at,
       CASE WHEN recent <= 3 THEN NULL ELSE created_at + interval '2 hours' END
FROM (
    SELECT n.*, row_number() OVER (
        PARTITION BY recipient_id ORDER BY created_at DESC, kind, actor_id, content_id
    ) AS recent
    FROM (
        SELECT followee_id AS recipient_id, 'NEW_FOLLOWER' AS kind, follower_id AS actor_id,
               NULL::bigint AS content_id, created_at
        FROM follows WHERE created_at >= $1
        UNION ALL
        SELECT c.author_id, 'REACTION', r.user_id, r.content_id, r.created_at
        FROM reactions r JOIN contents c ON c.id = r.content_id
        WHERE r.created_at >= $2
        UNION ALL
        SELECT f.follower_id, 'NEW_CONTENT_FROM_FOLLOWED', c.author_id, c.id, c.published_at
        FROM contents c JOIN follows f ON f.followee_id = c.author_id
        WHERE c.status = 'PUBLISHED' AND c.visibility <> 'PRIVATE'
          AND c.published_at >= $3 AND f.created_at <= c.published_at
    ) n
) ranked
WHERE recent <= 20
"""


async def write_notifications(conn: asyncpg.Connection, plan: SeedPlan) -> int:
    reference = plan.reference
    status: str = await conn.execute(
        NOTIFICATIONS_SQL,
        reference - timedelta(seconds=60 * DAY),
        reference - timedelta(seconds=14 * DAY),
        reference - timedelta(seconds=3 * DAY),
    )
    return int(status.split()[-1])


def _ident(name: str) -> str:
    # Names come from the catalog, but quoting keeps odd ones (capitals) intact.
    return '"' + name.replace('"', '""') + '"'
