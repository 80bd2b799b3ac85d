"""Latency of the ranked feed and full-text search on seeded data at production scale.

    python -m bench.feed --users 100000 --contents 1000000 --requests 200

Keeps an embedded Postgres in --data-dir (default .bench-data/ in the repository) and
seeds it only when its database is empty, so only the first run pays for the seed.
Requests run one at a time through the real GraphQL schema with a real context and
pooled engine, so the figures are latencies, not throughput. Prints p50/p90/p99/max
and SQL statements per request, the same statements executed alone (database time
without GraphQL and Python), EXPLAIN (ANALYZE, BUFFERS) of the feed and search
statements, the process's peak RSS and the Postgres settings in effect.

    python -m bench.feed --set random_page_cost=1.1

measures the same with a Postgres setting changed for the run (ALTER DATABASE ... SET,
reset afterwards), to try a setting without changing the code under test.
"""

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from db.queries.feed import (
    FeedWeights,
    count_search,
    feed_statement,
    plan_for_values,
    search_statement,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from strawberry import Schema

from bench.common import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    Latency,
    database_name,
    database_settings,
    peak_rss_mib,
    prepare_database,
    progress,
    source_digest,
    today_midnight_utc,
)
from db.embedded import EmbeddedPostgres
from db.seed import SeedPlan
from db.session import Database, StatementCounter, create_engine
from gateway.auth import Passwords, Tokens
from gateway.errors import ClassifyErrors
from resolvers import policy
from resolvers.context import create_context
from resolvers.cursors import CursorCodec
from resolvers.feed import feed_weights
from resolvers.ranking import RankingWeights
from resolvers.search import COUNT_LIMIT
from resolvers.viewer import Viewer
from schema import build_schema

SECRET = "bench-secret-not-for-production-0123456789"
QUERIES = REPO_ROOT / "db" / "queries" / "feed.py"
PAGE = 20

FEED = """query($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { score reasons node { id title author { handle } tags { name } reactionCount viewerHasReacted } }
    pageInfo { endCursor }
  }
}"""

SEARCH = """query($query: String!, $first: Int!, $count: Boolean!) {
  search(query: $query, first: $first) {
    totalCount @include(if: $count)
    edges { node { id title author { handle } tags { name } reactionCount viewerHasReacted } }
    pageInfo { endCursor }
  }
}"""

# From rare to very common in the seeded text (db/seed/words.py, texts.py): tag names
# appear in titles and bodies through their labels, and the head of the tag list
# dominates; "team" is in many English sentence parts.
SEARCH_QUERIES = ('"time zones"', "ocaml", "kubernetes", "python", "team")
EXPLAINED_QUERIES = ("ocaml", "python", "team")

# The benchmark viewer: a heavy but plausible account. Weights in (0, 1], popular
# tags among them, so every candidate source of the feed returns its full share.
VIEWER_HANDLE = "bench_viewer"
FOLLOWED_TAGS: dict[str, float] = {
    "python": 1.0, "postgresql": 0.9, "rust": 0.8, "databases": 0.8, "graphql": 1.0,
    "performance": 0.7, "sql": 0.7, "linux": 0.6, "distributed-systems": 0.6,
    "devops": 0.5, "observability": 0.5, "caching": 0.5, "programming": 0.4,
    "compilers": 0.4, "javascript": 0.3, "typescript": 0.3, "testing": 0.3,
    "webdev": 0.2, "kubernetes": 0.2, "haskell": 0.1,
}  # fmt: skip
MUTED_TAGS = ("blockchain", "gaming", "fitness")
# Reacted to but not followed, so the feed learns them as habits.
HABIT_TAGS = ("docker", "security", "ai", "cloud")
FOLLOWS = 200
MUTED_AUTHORS = 3
REACTIONS = 50
REACTION_DAYS = 60


@dataclass(frozen=True, slots=True)
class BenchViewer:
    id: int
    followed_tags: int
    follows: int
    muted_tags: int
    muted_authors: int
    reactions: int


async def prepare_viewer(engine: AsyncEngine) -> BenchViewer:
    """(Re)creates the benchmark viewer: dependent rows are replaced on every run so
    its reactions stay within the last REACTION_DAYS of the wall clock."""
    rng = random.Random(VIEWER_HANDLE)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        viewer_id: int = (
            await conn.execute(
                sa.text(
                    "INSERT INTO users (handle, email, password_hash, display_name, created_at)"
                    " VALUES (:handle, :email, '!', 'Bench Viewer', :joined)"
                    " ON CONFLICT (handle) DO UPDATE SET updated_at = now() RETURNING id"
                ),
                {
                    "handle": VIEWER_HANDLE,
                    "email": f"{VIEWER_HANDLE}@example.com",
                    "joined": now - timedelta(days=400),
                },
            )
        ).scalar_one()
        ids = {"uid": viewer_id}
        await conn.execute(sa.text("DELETE FROM reactions WHERE user_id = :uid"), ids)
        await conn.execute(sa.text("DELETE FROM follows WHERE follower_id = :uid"), ids)
        # Cascades to followed_tags, muted_tags and muted_authors.
        await conn.execute(sa.text("DELETE FROM preferences WHERE user_id = :uid"), ids)
        await conn.execute(
            sa.text("INSERT INTO preferences (user_id, languages) VALUES (:uid, ARRAY['en'])"),
            ids,
        )
        await conn.execute(
            sa.text(
                "INSERT INTO followed_tags (user_id, tag_id, weight)"
                " SELECT :uid, id, :weight FROM tags WHERE name = :name"
            ),
            [{**ids, "name": name, "weight": weight} for name, weight in FOLLOWED_TAGS.items()],
        )
        await conn.execute(
            sa.text(
                "INSERT INTO muted_tags (user_id, tag_id)"
                " SELECT :uid, id FROM tags WHERE name = :name"
            ),
            [{**ids, "name": name} for name in MUTED_TAGS],
        )
        # The most prolific authors: each fills its per-author share of candidates.
        active = (
            await conn.execute(
                sa.text(
                    "SELECT author_id FROM contents WHERE status = 'PUBLISHED'"
                    " AND author_id <> :uid GROUP BY author_id"
                    " ORDER BY count(*) DESC, author_id LIMIT :n"
                ),
                {**ids, "n": FOLLOWS + MUTED_AUTHORS},
            )
        ).scalars()
        authors = list(active)
        await conn.execute(
            sa.text("INSERT INTO follows (follower_id, followee_id) VALUES (:uid, :author)"),
            [{**ids, "author": author} for author in authors[:FOLLOWS]],
        )
        await conn.execute(
            sa.text("INSERT INTO muted_authors (user_id, author_id) VALUES (:uid, :author)"),
            [{**ids, "author": author} for author in authors[FOLLOWS:]],
        )
        await _react(conn, viewer_id, rng, now)
        counts = (
            await conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM followed_tags WHERE user_id = :uid),"
                    " (SELECT count(*) FROM follows WHERE follower_id = :uid),"
                    " (SELECT count(*) FROM muted_tags WHERE user_id = :uid),"
                    " (SELECT count(*) FROM muted_authors WHERE user_id = :uid),"
                    " (SELECT count(*) FROM reactions WHERE user_id = :uid)"
                ),
                ids,
            )
        ).one()
    return BenchViewer(viewer_id, *counts)


async def _react(conn: AsyncConnection, viewer_id: int, rng: random.Random, now: datetime) -> None:
    """Mostly on HABIT_TAGS content, the rest on anything recent in English."""
    recent = {
        "uid": viewer_id,
        "now": now,
        "since": now - timedelta(days=REACTION_DAYS),
    }
    pool = (
        "SELECT c.id, c.listed_at FROM contents c {join}"
        " WHERE c.status = 'PUBLISHED' AND c.visibility IN ('PUBLIC', 'MEMBERS')"
        " AND c.language = 'en' AND c.author_id <> :uid"
        " AND c.listed_at > :since AND c.listed_at <= :now {where}"
        " ORDER BY c.id DESC LIMIT 2000"
    )
    habit = (
        await conn.execute(
            sa.text(
                pool.format(
                    join="JOIN content_tags ct ON ct.content_id = c.id"
                    " JOIN tags t ON t.id = ct.tag_id",
                    where="AND t.name = ANY(:tags)",
                )
            ),
            {**recent, "tags": list(HABIT_TAGS)},
        )
    ).all()
    anything = (await conn.execute(sa.text(pool.format(join="", where="")), recent)).all()
    chosen: dict[int, datetime] = {}
    for rows, share in ((habit, REACTIONS * 4 // 5), (anything, REACTIONS)):
        for content_id, listed_at in rng.sample(rows, min(len(rows), share)):
            if len(chosen) < REACTIONS:
                chosen.setdefault(content_id, listed_at)
    if chosen:
        await conn.execute(
            sa.text(
                "INSERT INTO reactions (user_id, content_id, created_at)"
                " VALUES (:uid, :content, :at)"
            ),
            [
                {"uid": viewer_id, "content": cid, "at": at + (now - at) * rng.random()}
                for cid, at in chosen.items()
            ],
        )


# --- measuring --------------------------------------------------------------------


@dataclass(slots=True)
class Series:
    label: str
    seconds: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, seconds: float, statements: int) -> None:
        self.seconds.append(seconds)
        self.statements.append(statements)


@dataclass(frozen=True, slots=True)
class Outcome:
    data: Any
    statements: list[str]


class RequestFailed(Exception):
    """A GraphQL response with errors: the gateway answered, but not with data."""


class Client:
    """Executes documents as the gateway does: the real schema, a fresh context (and so
    fresh DataLoaders) per request, the gateway's pooled engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.db = Database(engine)
        self.schema: Schema = build_schema(extensions=[ClassifyErrors])
        self.cursors = CursorCodec(SECRET)
        # Nothing here logs in; cheap parameters keep the decoy hash from costing a second.
        self.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        self.tokens = Tokens(SECRET, timedelta(hours=1))

    async def execute(self, document: str, variables: dict[str, Any], viewer: Viewer) -> Outcome:
        context = create_context(
            db=self.db,
            viewer=viewer,
            cursors=self.cursors,
            passwords=self.passwords,
            tokens=self.tokens,
        )
        with StatementCounter(self.engine) as counter:
            result = await self.schema.execute(
                document, variable_values=variables, context_value=context
            )
        if result.errors:
            codes = {(e.extensions or {}).get("code", e.message) for e in result.errors}
            raise RequestFailed(", ".join(sorted(str(c) for c in codes)))
        return Outcome(result.data, list(counter.statements))


@dataclass(frozen=True, slots=True)
class Scale:
    requests: int
    search_requests: int
    warmup: int
    # Seconds one series may take: a search that needs 20 s a request gets a few
    # samples instead of holding the run for an hour.
    budget: float


async def collect(
    series: Series,
    run: Callable[[], Awaitable[Outcome]],
    n: int,
    scale: Scale,
    *,
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Up to `n` timed runs after `scale.warmup` untimed ones; stops at the series'
    time budget or its second failure. Returns the successful outcomes, in order."""
    spent = 0.0

    async def attempt() -> tuple[float, Outcome | None]:
        if before is not None:
            await before()
        started = time.perf_counter()
        try:
            outcome = await run()
        except Exception as error:  # a timeout or an error response is a result here
            elapsed = time.perf_counter() - started
            series.failures.append(f"{type(error).__name__} after {elapsed:.1f} s: {error}"[:160])
            return elapsed, None
        return time.perf_counter() - started, outcome

    # Warm-up fills Postgres's buffers and the driver's statement cache and imports
    # whatever the first resolution imports lazily. A statement slow enough to eat a
    # tenth of the budget needs no warming: its own run warms the buffers.
    for _ in range(scale.warmup):
        took, outcome = await attempt()
        spent += took
        if outcome is None or took > scale.budget / 10:
            break
    outcomes: list[Outcome] = []
    for _ in range(n):
        if len(series.failures) >= 2 or (spent >= scale.budget and series.seconds):
            break
        took, outcome = await attempt()
        spent += took
        if outcome is not None:
            series.add(took, len(outcome.statements))
            outcomes.append(outcome)
    return outcomes


async def bench_feed(client: Client, viewer: Viewer, scale: Scale) -> list[Series]:
    def first_page() -> Awaitable[Outcome]:
        return client.execute(FEED, {"first": PAGE, "after": None}, viewer)

    progress("feed: signed-in first pages")
    first = Series("feed, signed in, first page (new walk)")
    outcomes = await collect(first, first_page, scale.requests, scale)

    # Each continues a different walk of the first pages above, as real clients would.
    cursors = [o.data["feed"]["pageInfo"]["endCursor"] for o in outcomes]
    progress("feed: signed-in next pages")
    following = Series("feed, signed in, next page (snapshot)")
    position = 0

    def next_page() -> Awaitable[Outcome]:
        nonlocal position
        cursor = cursors[position % len(cursors)]
        position += 1
        return client.execute(FEED, {"first": PAGE, "after": cursor}, viewer)

    if cursors:
        await collect(following, next_page, scale.requests, scale)
    return [first, following]


async def bench_anonymous(client: Client, scale: Scale) -> list[Series]:
    anonymous = Viewer.anonymous()

    def first_page() -> Awaitable[Outcome]:
        return client.execute(FEED, {"first": PAGE, "after": None}, anonymous)

    async def drop_shared_snapshots() -> None:
        async with client.engine.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM feed_snapshots WHERE id LIKE 'feed-anonymous-%'")
            )

    progress("feed: anonymous first pages")
    # Anonymous first pages share one snapshot per minute: a request that had to rank
    # (and so stored the snapshot) is a miss, the rest are hits.
    await drop_shared_snapshots()
    shared = Series("all")
    outcomes = await collect(shared, first_page, scale.requests, replace(scale, warmup=0))
    miss = Series("feed, anonymous, first page: shared-snapshot miss")
    hit = Series("feed, anonymous, first page: shared-snapshot hit")
    for seconds, count, outcome in zip(shared.seconds, shared.statements, outcomes, strict=True):
        ranked = any("INSERT INTO feed_snapshots" in s for s in outcome.statements)
        (miss if ranked else hit).add(seconds, count)

    # Misses happen about once a minute; forcing one per request gives them a real
    # distribution. The delete runs before the clock starts.
    progress("feed: anonymous first pages, shared snapshot dropped before each")
    forced = Series("feed, anonymous, first page: forced miss")
    await collect(forced, first_page, scale.requests, scale, before=drop_shared_snapshots)
    return [miss, hit, forced]


async def bench_search(
    client: Client, viewer: Viewer, scale: Scale
) -> tuple[list[Series], dict[str, int]]:
    results: list[Series] = []
    totals: dict[str, int] = {}
    for query in SEARCH_QUERIES:
        for count in (False, True):
            variables = {"query": query, "first": PAGE, "count": count}

            def run(variables: dict[str, Any] = variables) -> Awaitable[Outcome]:
                return client.execute(SEARCH, variables, viewer)

            series = Series(f"search {query}" + (" + totalCount" if count else ""))
            progress(series.label)
            outcomes = await collect(series, run, scale.search_requests, scale)
            results.append(series)
            if count and outcomes:
                totals[query] = outcomes[-1].data["search"]["totalCount"]
    return results, totals


# --- the statements alone -----------------------------------------------------------


def weights() -> FeedWeights:
    return feed_weights(RankingWeights())


def feed_call(viewer: Viewer) -> tuple[Any, dict[str, Any]]:
    return feed_statement(
        viewer_id=viewer.id,
        access=policy.content_filter(viewer),
        now=datetime.now(UTC),
        weights=weights(),
    )


def search_call(viewer: Viewer, query: str) -> tuple[Any, dict[str, Any]]:
    return search_statement(
        query=query,
        viewer_id=viewer.id,
        access=policy.content_filter(viewer),
        now=datetime.now(UTC),
        weights=weights(),
    )


def unbounded_engine(url: str) -> AsyncEngine:
    """For the statements alone and EXPLAIN: without the gateway's 30 s command
    timeout, so a statement slower than that is measured rather than cut off."""
    return create_async_engine(url, pool_size=2, connect_args={"command_timeout": None})


async def time_statement(
    engine: AsyncEngine,
    label: str,
    make: Callable[[], tuple[Any, dict[str, Any]]],
    n: int,
    scale: Scale,
) -> Series:
    series = Series(label)
    async with engine.connect() as conn:

        async def run() -> Outcome:
            # Built per run, like the resolvers do, so `now` moves on.
            statement, params = make()
            await plan_for_values(conn)
            rows = (await conn.execute(statement, params)).all()
            return Outcome(rows, ["statement"])

        await collect(series, run, n, scale)
    return series


async def time_count(engine: AsyncEngine, viewer: Viewer, query: str, scale: Scale) -> Series:
    series = Series(f"SQL count_search {query}")
    db = Database(engine)

    async def run() -> Outcome:
        async with db.session() as session:
            total = await count_search(
                session,
                query=query,
                viewer_id=viewer.id,
                access=policy.content_filter(viewer),
                now=datetime.now(UTC),
                limit=COUNT_LIMIT,
            )
        return Outcome(total, ["statement"])

    await collect(series, run, scale.search_requests, scale)
    return series


async def bench_sql(engine: AsyncEngine, viewer: Viewer, scale: Scale) -> list[Series]:
    anonymous = Viewer.anonymous()
    progress("statements alone: feed")
    results = [
        await time_statement(
            engine,
            "SQL feed_statement, signed in",
            lambda: feed_call(viewer),
            scale.requests,
            scale,
        ),
        await time_statement(
            engine,
            "SQL feed_statement, anonymous",
            lambda: feed_call(anonymous),
            scale.requests,
            scale,
        ),
    ]
    for query in SEARCH_QUERIES:
        progress(f"statements alone: search {query}")

        def make(query: str = query) -> tuple[Any, dict[str, Any]]:
            return search_call(viewer, query)

        label = f"SQL search_statement {query}"
        results.append(await time_statement(engine, label, make, scale.search_requests, scale))
        results.append(await time_count(engine, viewer, query, scale))
    return results


# --- EXPLAIN ------------------------------------------------------------------------


class Explain(Executable, ClauseElement):
    """EXPLAIN (ANALYZE, BUFFERS) around a statement, compiled and bound by SQLAlchemy
    exactly as the statement alone would be: same SQL, same parameters and casts."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS) " + compiler.process(element.statement, **kw)


async def explain(engine: AsyncEngine, statement: Any, params: dict[str, Any]) -> str:
    sent: list[str] = []

    def capture(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as conn:
            # Once without EXPLAIN: warms the buffers as a busy server's are, and records
            # the SQL that the plain statement sends. Planned as the gateway plans it.
            await plan_for_values(conn)
            await conn.execute(statement, params)
            rows = (await conn.execute(Explain(statement), params)).scalars().all()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN (ANALYZE, BUFFERS) "
    if sent[-1] != prefix + sent[-2]:
        raise AssertionError("EXPLAIN did not run the statement as the gateway sends it")
    return "\n".join(str(r) for r in rows)


async def explains(engine: AsyncEngine, viewer: Viewer) -> list[tuple[str, str]]:
    progress("EXPLAIN ANALYZE")
    plans = [("feed_statement, bench viewer", await explain(engine, *feed_call(viewer)))]
    plans.append(
        ("feed_statement, anonymous", await explain(engine, *feed_call(Viewer.anonymous())))
    )
    for query in EXPLAINED_QUERIES:
        plans.append(
            (f"search_statement {query!r}", await explain(engine, *search_call(viewer, query)))
        )
    return plans


# --- reporting ----------------------------------------------------------------------

SETTINGS = (
    "shared_buffers",
    "plan_cache_mode",
    "work_mem",
    "effective_cache_size",
    "maintenance_work_mem",
    "random_page_cost",
    "max_parallel_workers_per_gather",
    "jit",
)


async def server_facts(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        facts = {"version": str((await conn.execute(sa.text("SELECT version()"))).scalar_one())}
        for name in SETTINGS:
            facts[name] = str((await conn.execute(sa.text(f"SHOW {name}"))).scalar_one())
        size = (
            await conn.execute(sa.text("SELECT pg_database_size(current_database())"))
        ).scalar_one()
        facts["database size"] = f"{size / 2**20:,.0f} MiB"
        newest = (
            await conn.execute(
                sa.text("SELECT max(listed_at) FROM contents WHERE status = 'PUBLISHED'")
            )
        ).scalar_one()
        facts["newest published content"] = str(newest)
        recent = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM contents WHERE status = 'PUBLISHED'"
                    " AND listed_at > now() - make_interval(days => :days)"
                ),
                {"days": RankingWeights().window_days},
            )
        ).scalar_one()
        facts["published in the feed window"] = f"{recent:,}"
    return facts


def _statement_counts(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def print_table(title: str, rows: Sequence[Series]) -> None:
    print(f"\n{title}")
    header = f"{'n':>4} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'stmts':>6} {'failed':>6}"
    print(f"  {'':<52} {header}")
    notes: list[str] = []
    for series in rows:
        failed = f"{len(series.failures):>6}"
        notes += [f"  {series.label}: {failure}" for failure in series.failures]
        if not series.seconds:
            print(f"  {series.label:<52} {0:>4} {'':>8} {'':>8} {'':>8} {'':>8} {'':>6} {failed}")
            continue
        lat = Latency.of(series.seconds)
        print(
            f"  {series.label:<52} {lat.count:>4} {lat.p50:>8.1f} {lat.p90:>8.1f}"
            f" {lat.p99:>8.1f} {lat.max:>8.1f} {_statement_counts(series.statements):>6} {failed}"
        )
    if notes:
        print("  failures:")
        print("\n".join(notes))


async def run(
    plan: SeedPlan,
    data_dir: Path,
    scale: Scale,
    *,
    pool_size: int,
    settings: dict[str, str],
) -> None:
    server = EmbeddedPostgres(data_dir)
    try:
        progress(f"database {database_name(plan)} in {data_dir}")
        prepared = await prepare_database(server, plan)
        if prepared.seeded_now:
            progress(f"seeded in {prepared.seed_seconds:.0f} s")
        if prepared.vacuum_seconds is not None:
            progress(f"VACUUM (ANALYZE) of the seeded tables: {prepared.vacuum_seconds:.0f} s")
        async with database_settings(prepared.url, settings):
            engine = create_engine(prepared.url, pool_size=pool_size)
            unbounded = unbounded_engine(prepared.url)
            try:
                bench_viewer = await prepare_viewer(engine)
                viewer = Viewer.member(bench_viewer.id)
                client = Client(engine)
                graphql = await bench_feed(client, viewer, scale)
                graphql += await bench_anonymous(client, scale)
                search, totals = await bench_search(client, viewer, scale)
                sql = await bench_sql(unbounded, viewer, scale)
                plans = await explains(unbounded, viewer)
                facts = await server_facts(engine)
            finally:
                await engine.dispose()
                await unbounded.dispose()
    finally:
        server.stop()

    print(f"\nplan: {plan.users:,} users, {plan.contents:,} contents, seed {plan.seed}")
    print(f"db/queries/feed.py sha256 {source_digest(QUERIES)}")
    print(
        f"bench viewer: id {bench_viewer.id}, {bench_viewer.followed_tags} followed tags,"
        f" {bench_viewer.follows} follows, {bench_viewer.muted_tags} muted tags,"
        f" {bench_viewer.muted_authors} muted authors, {bench_viewer.reactions} reactions"
    )
    print(
        f"page size {PAGE}; up to {scale.warmup} uncounted warm-up requests and"
        f" {scale.budget:.0f} s per scenario; GraphQL requests time out after 30 s"
        " (the gateway's command_timeout), the statements alone do not"
    )
    print_table("GraphQL, in process, sequential (ms)", graphql)
    print_table("search through GraphQL, signed in (ms)", search)
    print("  matches (totalCount): " + ", ".join(f"{q} {n:,}" for q, n in totals.items()))
    print_table("statements alone, one connection (ms)", sql)
    for title, plan_text in plans:
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) {title}\n{plan_text}")
    print(f"\npeak RSS (python): {peak_rss_mib():,.0f} MiB")
    print("postgres:")
    for name, value in facts.items():
        print(f"  {name:<32} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--contents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=200, help="per feed scenario")
    parser.add_argument(
        "--search-requests", type=int, default=None, help="per search query (default --requests)"
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument(
        "--budget", type=float, default=120.0, help="seconds per scenario before it stops early"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Postgres setting for this run only, e.g. random_page_cost=1.1 (repeatable)",
    )
    args = parser.parse_args()
    # The data ends today, so the feed's recent window has content (see bench.common).
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    scale = Scale(
        requests=args.requests,
        search_requests=args.search_requests or args.requests,
        warmup=args.warmup,
        budget=args.budget,
    )
    settings = dict(item.split("=", 1) for item in args.set)
    asyncio.run(run(plan, args.data_dir, scale, pool_size=args.pool_size, settings=settings))


if __name__ == "__main__":
    main()
