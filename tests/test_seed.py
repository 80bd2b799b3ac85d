import re

import asyncpg
import pytest
from argon2 import PasswordHasher

from db.embedded import asyncpg_dsn
from db.seed import DEMO_PASSWORD, DatabaseNotEmpty, SeedPlan, is_empty, seed_database
from db.seed.schema import SEEDED_TABLES
from db.seed.words import TAGS

PLAN = SeedPlan(users=50, contents=300)

# Everything a bulk load could leave behind changed: indexes, constraints, triggers.
SCHEMA_SQL = """
SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""

INVARIANTS = {
    "published without published_at": (
        "SELECT count(*) FROM contents WHERE status = 'PUBLISHED' AND published_at IS NULL"
    ),
    "reaction_count differs from reactions": """
        SELECT count(*) FROM contents c
        WHERE reaction_count <> (SELECT count(*) FROM reactions r WHERE r.content_id = c.id)""",
    "reaction on unpublished or private content": """
        SELECT count(*) FROM reactions r JOIN contents c ON c.id = r.content_id
        WHERE c.status <> 'PUBLISHED' OR c.visibility = 'PRIVATE'""",
    "reaction before publication or by the author": """
        SELECT count(*) FROM reactions r JOIN contents c ON c.id = r.content_id
        WHERE r.created_at < c.published_at OR r.user_id = c.author_id""",
    "reaction before the reader joined": """
        SELECT count(*) FROM reactions r JOIN users u ON u.id = r.user_id
        WHERE r.created_at < u.created_at""",
    "self-follow": "SELECT count(*) FROM follows WHERE follower_id = followee_id",
    "content older than its author": """
        SELECT count(*) FROM contents c JOIN users u ON u.id = c.author_id
        WHERE c.created_at < u.created_at""",
    "timestamp at or after the reference": """
        SELECT (SELECT count(*) FROM users WHERE created_at >= $1 OR updated_at >= $1)
             + (SELECT count(*) FROM contents WHERE updated_at >= $1 OR listed_at >= $1)
             + (SELECT count(*) FROM reactions WHERE created_at >= $1)
             + (SELECT count(*) FROM follows WHERE created_at >= $1)""",
    "muted author is self": "SELECT count(*) FROM muted_authors WHERE user_id = author_id",
    "tag both followed and muted": """
        SELECT count(*) FROM muted_tags m
        JOIN followed_tags f USING (user_id, tag_id)""",
}


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(url))


async def _fingerprint(url: str) -> dict[str, str]:
    """An md5 per table over all its rows in a fixed order."""
    conn = await _connect(url)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                f" FROM {table} t"
            )
            for table in SEEDED_TABLES
        }
    finally:
        await conn.close()


async def test_seeds_a_consistent_plan_and_leaves_the_schema_as_migrated(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    conn = await _connect(url)
    try:
        schema_before = await conn.fetch(SCHEMA_SQL)
        assert await is_empty(url)

        stages: list[str] = []
        report = await seed_database(url, PLAN, progress=lambda s, d, t: stages.append(s))

        assert not await is_empty(url)
        assert await conn.fetch(SCHEMA_SQL) == schema_before
        assert stages[0] == "users" and stages[-1] == "vacuum"
        never_vacuumed = await conn.fetch(
            "SELECT relname FROM pg_stat_user_tables"
            " WHERE relname = ANY($1::text[]) AND last_vacuum IS NULL",
            list(SEEDED_TABLES),
        )
        assert never_vacuumed == []

        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in SEEDED_TABLES}
        assert (report.users, counts["users"]) == (PLAN.users, PLAN.users)
        assert (report.contents, counts["contents"]) == (PLAN.contents, PLAN.contents)
        assert report.tags == counts["tags"] == len(TAGS)
        for table in ("content_tags", "follows", "reactions", "preferences", "notifications"):
            assert getattr(report, table) == counts[table] > 0, table
        per_content = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE n NOT BETWEEN 1 AND 5) FROM"
            " (SELECT count(t.tag_id) n FROM contents c"
            " LEFT JOIN content_tags t ON t.content_id = c.id GROUP BY c.id) x"
        )
        assert per_content == 0

        for name, sql in INVARIANTS.items():
            args = [PLAN.reference] if "$1" in sql else []
            assert await conn.fetchval(sql, *args) == 0, name

        statuses = dict(await conn.fetch("SELECT status, count(*) FROM contents GROUP BY 1"))
        assert set(statuses) == {"PUBLISHED", "DRAFT", "ARCHIVED"}
        assert statuses["PUBLISHED"] > PLAN.contents * 0.7
        handles = [r["handle"] for r in await conn.fetch("SELECT handle FROM users")]
        assert all(re.fullmatch(r"[a-z0-9_]{3,30}", h) for h in handles)

        ada = await conn.fetchrow("SELECT * FROM users WHERE handle = 'ada'")
        assert ada["role"] == "ADMIN"
        assert [login.handle for login in report.demo_logins] == ["ada", "grace", "alan"]
        assert report.demo_logins[0].email == ada["email"]
        assert PasswordHasher().verify(ada["password_hash"], DEMO_PASSWORD)

        # Identities continue after the seeded ids.
        new_user = await conn.fetchval(
            "INSERT INTO users (handle, email, password_hash, display_name)"
            " VALUES ('newcomer', 'newcomer@example.com', 'x', 'New') RETURNING id"
        )
        assert new_user == PLAN.users + 1

        # The reaction_count trigger is back on.
        content_id, before = await conn.fetchrow(
            "SELECT id, reaction_count FROM contents WHERE status = 'PUBLISHED' LIMIT 1"
        )
        await conn.execute(
            "INSERT INTO reactions (user_id, content_id) VALUES ($1, $2)", new_user, content_id
        )
        after = await conn.fetchval("SELECT reaction_count FROM contents WHERE id = $1", content_id)
        assert after == before + 1
    finally:
        await conn.close()


async def test_same_seed_gives_identical_rows_and_another_seed_does_not(fresh_databases) -> None:
    first, second, other = [await fresh_databases.create() for _ in range(3)]
    await seed_database(first, PLAN)
    await seed_database(second, PLAN)
    await seed_database(other, SeedPlan(PLAN.users, PLAN.contents, seed=PLAN.seed + 1))

    expected = await _fingerprint(first)
    assert await _fingerprint(second) == expected
    different = await _fingerprint(other)
    assert different["tags"] == expected["tags"], "tags are a fixed list"
    for table in ("users", "contents", "content_tags", "follows", "reactions"):
        assert different[table] != expected[table], table


async def test_refuses_a_database_that_already_has_rows(fresh_database_url: str) -> None:
    await seed_database(fresh_database_url, SeedPlan(users=5, contents=10))
    before = await _fingerprint(fresh_database_url)
    with pytest.raises(DatabaseNotEmpty, match="users"):
        await seed_database(fresh_database_url, PLAN)
    assert await _fingerprint(fresh_database_url) == before


def test_rejects_impossible_plans() -> None:
    with pytest.raises(ValueError):
        SeedPlan(users=0, contents=10)
    with pytest.raises(ValueError):
        SeedPlan(users=10, contents=-1)
