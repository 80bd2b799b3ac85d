"""The stored feed at production scale: how long rebuilding a viewer's feed takes, what
a first page and a search cost in process, what a publication by an author with many
followers costs the author and how soon it reaches their followers' feeds, and how much
the stored feeds take.

    python -m bench.feed --users 100000 --contents 1000000
    python -m bench.feed --followers 10000 --publishes 30 --all-feeds

Keeps an embedded Postgres in --data-dir (default .bench-data/ in the repository) and
seeds it only when its database is empty. Requests run one at a time through the real
schema and executor with the gateway's pools (latency, not throughput: bench.http
measures that over HTTP). --all-feeds builds every user's feed first (as `gateway
rebuild-feeds --all` does, with a progress bar) so the storage figure is for every one
of them.
"""

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from graphql import parse
from graphql.utilities import get_operation_ast
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.common import (
    DEFAULT_DATA_DIR,
    Latency,
    database_name,
    peak_rss_mib,
    prepare_database,
    progress,
    today_midnight_utc,
)
from db.embedded import EmbeddedPostgres
from db.feed.rebuild import rebuild, rebuild_all
from db.ranking import RankingWeights
from db.read_pool import ReadPool
from db.reads.walks import STATE
from db.seed import SeedPlan
from db.session import Database, StatementCounter, create_engine
from execution.executor import Executor
from execution.extension import WholeQueries
from gateway.auth import Passwords, Tokens
from gateway.errors import ClassifyErrors
from gateway.feed_worker import FeedWorker
from gateway.progress import ProgressBar
from resolvers.context import Context
from resolvers.cursors import CursorCodec
from resolvers.viewer import Viewer
from schema import build_schema

SECRET = "bench-secret-not-for-production-0123456789"
PAGE = 20
WEIGHTS = RankingWeights()

FEED = """query($first: Int!) {
  feed(first: $first) {
    edges { node { id title publishedAt reactionCount viewerHasReacted author { id handle displayName } tags { id name } } }
    pageInfo { hasNextPage }
  }
}"""
FEED_WALK = """query($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor score reasons node { id title author { handle } tags { name } reactionCount viewerHasReacted } }
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
CREATE = """mutation($title: String!) {
  createContent(input: {title: $title, body: "A note for the benchmark.", tags: ["python"]}) { id } }"""
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { id status } }"

# From rare to very common in the seeded text (db/seed/words.py, texts.py): tag names
# appear in titles and bodies through their labels, and the head of the tag list
# dominates; "team" is in many English sentence parts.
SEARCH_QUERIES = ('"time zones"', "ocaml", "kubernetes", "python", "team")
AUTHOR_HANDLE = "bench_author"

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


class RequestFailed(Exception):
    """A GraphQL response with errors: the gateway answered, but not with data."""


class Client:
    """Executes documents as the gateway does: the real schema with its extensions, the
    executor, the gateway's pools (a read pool beside the write engine)."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.db = Database(
            create_engine(url, pool_size=pool_size), reads=ReadPool(url, size=pool_size)
        )
        self.schema = build_schema(extensions=[ClassifyErrors, WholeQueries])
        self.executor = Executor(self.schema, WEIGHTS, lambda db, v: rebuild(db, v, WEIGHTS))
        self.cursors = CursorCodec(SECRET)
        self.passwords = Passwords()
        self.tokens = Tokens(SECRET, timedelta(hours=1))

    def context(self, viewer: Viewer) -> Context:
        return Context(
            viewer=viewer,
            db=self.db,
            reads=self.executor,
            cursors=self.cursors,
            passwords=self.passwords,
            tokens=self.tokens,
            ranking=WEIGHTS,
        )

    async def execute(self, document: str, variables: dict[str, Any], viewer: Viewer) -> Outcome:
        with StatementCounter(self.db) as counter:
            result = await self.schema.execute(
                document, variable_values=variables, context_value=self.context(viewer)
            )
        if result.errors:
            codes = {(e.extensions or {}).get("code", e.message) for e in result.errors}
            raise RequestFailed(", ".join(sorted(str(c) for c in codes)))
        return Outcome(result.data, list(counter.statements))

    async def close(self) -> None:
        await self.db.dispose()


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
                {"days": WEIGHTS.window_days},
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


# --- rebuilds ---------------------------------------------------------------------------


async def mark_stale(db: Database, viewer_id: int) -> None:
    async with db.session() as session:
        await session.exec(
            sa.update(STATE).where(STATE.c.viewer_id == viewer_id).values(stale=True)
        )
        await session.commit()


async def bench_rebuilds(client: Client, viewer: Viewer, scale: Scale, sample: int) -> list[Series]:
    """A returning viewer's first page rebuilds their feed first: the bench viewer's,
    and a sample of seeded users' (fewer follows and tags: the usual case)."""
    db = client.db
    heavy = Series("rebuild, bench viewer (200 follows, 20 tags)")
    for _ in range(scale.requests // 4 or 1):
        started = time.perf_counter()
        await rebuild(db, viewer.id or 0, WEIGHTS)
        heavy.add(time.perf_counter() - started, 0)
    returning = Series("first page of a returning bench viewer (rebuild + read)")
    await collect(
        returning,
        lambda: client.execute(FEED, {"first": PAGE}, viewer),
        scale.requests // 4 or 1,
        scale,
        before=lambda: mark_stale(db, viewer.id or 0),
    )
    rows = await db.fetch(
        "SELECT id FROM users WHERE handle <> $1 ORDER BY random() LIMIT $2", VIEWER_HANDLE, sample
    )
    ids = [int(row[0]) for row in rows]
    typical = Series(f"rebuild, {sample} random seeded users")
    for user_id in ids:
        started = time.perf_counter()
        await rebuild(db, user_id, WEIGHTS)
        typical.add(time.perf_counter() - started, 0)
    return [heavy, returning, typical]


# --- reads ------------------------------------------------------------------------------


async def bench_reads(client: Client, viewer: Viewer, scale: Scale) -> list[Series]:
    first = Series(f"feed(first: {PAGE}) first page, signed in")
    await client.execute(FEED, {"first": PAGE}, viewer)  # builds it if it was not
    await collect(
        first, lambda: client.execute(FEED, {"first": PAGE}, viewer), scale.requests, scale
    )
    walk = Series("... with cursors, score and reasons (stores the walk)")
    pages = await collect(
        walk, lambda: client.execute(FEED_WALK, {"first": PAGE}, viewer), scale.requests, scale
    )
    nxt = Series("... the next page (reads the walk)")
    after = pages[-1].data["feed"]["pageInfo"]["endCursor"] if pages else None
    await collect(
        nxt,
        lambda: client.execute(FEED_WALK, {"first": PAGE, "after": after}, viewer),
        scale.requests,
        scale,
    )
    anonymous = Series("feed first page, anonymous (the shared list)")
    await collect(
        anonymous,
        lambda: client.execute(FEED, {"first": PAGE}, Viewer.anonymous()),
        scale.requests,
        scale,
    )
    return [first, walk, nxt, anonymous]


async def bench_search(client: Client, viewer: Viewer, scale: Scale) -> list[Series]:
    found: list[Series] = []
    for query in SEARCH_QUERIES:
        for count in (False, True):
            series = Series(f"search {query}" + (" with totalCount" if count else ""))
            variables: dict[str, Any] = {"query": query, "first": PAGE, "count": count}

            def searched(v: dict[str, Any] = variables) -> Awaitable[Outcome]:
                return client.execute(SEARCH, v, viewer)

            await collect(series, searched, scale.search_requests, scale)
            found.append(series)
    return found


def compiled_statement(
    client: Client, document: str, viewer: Viewer, *, lean: bool = False
) -> tuple[str, list[Any]]:
    """The one statement the executor sends for `document` (a page of PAGE) as `viewer`:
    its SQL and arguments; with `lean`, as once the viewer's feed head is stored (a first
    page without cursors then reads only that, db/reads/walks.py)."""
    from execution.binding import Binder, FeedHeads

    operation = get_operation_ast(parse(document))
    assert operation is not None
    variables = _variables({"first": PAGE}, client, operation)
    plan = client.executor.planner.operation(operation, {}, variables)
    heads = FeedHeads()
    now = datetime.now(UTC)
    if lean and viewer.id is not None:
        heads.stored(viewer.id, 10_000, now + timedelta(hours=1))
    bound = Binder(client.schema, client.context(viewer), variables, now, heads=heads).operation(
        plan
    )
    compiled = client.executor.statements.get(bound.statement)
    return compiled.sql, list(compiled.arguments(bound.values))


async def explain_first_page(client: Client, viewer: Viewer) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement a signed-in first page sends."""
    sql, arguments = compiled_statement(client, FEED, viewer)
    rows = await client.db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *arguments)
    return "\n".join(str(row[0]) for row in rows)


def _variables(values: dict[str, Any], client: Client, operation: Any) -> Any:
    from graphql.execution.values import get_variable_values

    return get_variable_values(client.schema._schema, operation.variable_definitions, values)


# --- a publication with many followers ----------------------------------------------------


async def prepare_author(client: Client, followers: int, *, build: bool) -> tuple[int, int]:
    """An author followed by `followers` seeded users, whose feeds are built (so they
    count as active readers); the author's id and how many followers are active."""
    db = client.db
    async with db.session() as session:
        connection = await session.connection()
        author_id = (
            await connection.execute(
                sa.text(
                    "INSERT INTO users (handle, email, password_hash, display_name)"
                    " VALUES (:h, :e, '!', 'Bench Author')"
                    " ON CONFLICT (handle) DO UPDATE SET updated_at = now() RETURNING id"
                ),
                {"h": AUTHOR_HANDLE, "e": f"{AUTHOR_HANDLE}@example.com"},
            )
        ).scalar_one()
        await connection.execute(
            sa.text(
                "INSERT INTO follows (follower_id, followee_id)"
                " SELECT id, :a FROM users WHERE id <> :a AND handle <> :v ORDER BY id LIMIT :n"
                " ON CONFLICT DO NOTHING"
            ),
            {"a": author_id, "v": VIEWER_HANDLE, "n": followers},
        )
        await session.commit()
    rows = await db.fetch(
        "SELECT f.follower_id FROM follows f LEFT JOIN feed_state s"
        " ON s.viewer_id = f.follower_id WHERE f.followee_id = $1"
        " AND (s.built_at IS NULL OR s.stale)",
        author_id,
    )
    ids = [int(row[0]) for row in rows]
    if build and ids:
        progress(f"building the feeds of {len(ids):,} followers of @{AUTHOR_HANDLE}")
        bar = ProgressBar()
        started = time.perf_counter()
        await rebuild_all(db, ids, WEIGHTS, concurrency=2, progress=bar)
        bar.close()
        progress(f"  built in {time.perf_counter() - started:.0f} s")
    (row,) = await db.fetch(
        "SELECT count(*) FROM follows f JOIN feed_state s ON s.viewer_id = f.follower_id"
        " WHERE f.followee_id = $1 AND s.built_at IS NOT NULL",
        author_id,
    )
    active = row[0]
    return int(author_id), int(active)


async def bench_publishes(
    client: Client, author_id: int, active: int, n: int
) -> tuple[Series, Series]:
    """Each publication: how long publishContent takes for its author, and how long from
    its commit until every active follower's stored feed holds it (the feed worker
    running in this process, as in `gateway serve`)."""
    author = Viewer.member(author_id)
    worker = FeedWorker(client.db, WEIGHTS)
    worker.start()
    publish = Series(f"publishContent, author with {active:,} active followers")
    reached = Series(f"publish commit -> all {active:,} followers' stored feeds")
    try:
        for i in range(n):
            created = await client.execute(CREATE, {"title": f"bench note {i}"}, author)
            content_id = created.data["createContent"]["id"]
            started = time.perf_counter()
            outcome = await client.execute(PUBLISH, {"id": content_id}, author)
            committed = time.perf_counter()
            publish.add(committed - started, len(outcome.statements))
            pk = int(content_id and _pk(content_id))
            while True:
                (row,) = await client.db.fetch(
                    "SELECT count(*) FROM feed_entries WHERE content_id = $1", pk
                )
                stored = row[0]
                if stored >= active:
                    break
                await asyncio.sleep(0.02)
                if time.perf_counter() - committed > 120:
                    reached.failures.append(f"{stored:,} of {active:,} after 120 s")
                    break
            reached.add(time.perf_counter() - committed, 0)
    finally:
        await worker.stop()
    return publish, reached


def _pk(global_id: str) -> int:
    from resolvers.ids import decode_id

    pk = decode_id(global_id)[1]
    assert pk is not None, global_id
    return pk


# --- storage ------------------------------------------------------------------------------


async def storage(client: Client) -> dict[str, str]:
    (row,) = await client.db.fetch(
        "SELECT (SELECT count(*) FROM feed_state WHERE built_at IS NOT NULL),"
        " (SELECT count(*) FROM feed_entries),"
        " pg_total_relation_size('feed_entries'), pg_relation_size('feed_entries'),"
        " pg_total_relation_size('feed_state') + pg_total_relation_size('feed_habits'),"
        " pg_total_relation_size('feed_snapshots'), pg_total_relation_size('feed_shared')"
    )
    feeds, entries, total, heap, state, walks, shared = (int(v) for v in row)
    per_feed = total / feeds if feeds else 0
    return {
        "stored feeds": f"{feeds:,}",
        "feed_entries rows": f"{entries:,} ({entries / feeds if feeds else 0:,.0f} a feed)",
        "feed_entries with indexes": f"{total / 2**20:,.0f} MiB (heap {heap / 2**20:,.0f} MiB;"
        f" {per_feed / 1024:,.1f} KiB a feed)",
        "feed_state + feed_habits": f"{state / 2**20:,.1f} MiB",
        "walks (feed_snapshots), shared lists": f"{walks / 2**20:,.1f} MiB, {shared / 2**20:,.1f} MiB",
    }


def print_facts(title: str, facts: dict[str, str]) -> None:
    print(f"\n{title}")
    for name, value in facts.items():
        print(f"  {name:<40} {value}")


async def run(args: argparse.Namespace) -> None:
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    scale = Scale(
        requests=args.requests,
        search_requests=args.search_requests or args.requests,
        warmup=args.warmup,
        budget=args.budget,
    )
    server = EmbeddedPostgres(args.data_dir)
    try:
        progress(f"database {database_name(plan)} in {args.data_dir}")
        prepared = await prepare_database(server, plan)
        engine = create_engine(prepared.url)
        try:
            bench_viewer = await prepare_viewer(engine)
        finally:
            await engine.dispose()
        viewer = Viewer.member(bench_viewer.id)
        client = Client(prepared.url, args.pool_size)
        try:
            if args.all_feeds:
                ids = [int(r[0]) for r in await client.db.fetch("SELECT id FROM users ORDER BY id")]
                progress(f"building every user's feed ({len(ids):,})")
                bar = ProgressBar()
                started = time.perf_counter()
                await rebuild_all(client.db, ids, WEIGHTS, concurrency=2, progress=bar)
                bar.close()
                progress(f"  built in {time.perf_counter() - started:.0f} s")
            # As a server that has run a while has them (autovacuum, or rebuild_all
            # after a bulk build): statistics that know the stored feeds.
            async with client.db.session() as session:
                connection = await session.connection()
                await connection.execute(sa.text("ANALYZE feed_entries, feed_state, feed_habits"))
                await session.commit()
            progress("rebuilds")
            rebuilds = await bench_rebuilds(client, viewer, scale, args.sample)
            progress("reads")
            reads = await bench_reads(client, viewer, scale)
            plan_text = await explain_first_page(client, viewer)
            progress("searches")
            searches = await bench_search(client, viewer, scale)
            progress(f"an author with {args.followers:,} followers")
            author_id, active = await prepare_author(
                client, args.followers, build=not args.all_feeds
            )
            publishes = await bench_publishes(client, author_id, active, args.publishes)
            stored = await storage(client)
            facts = await server_facts(client.db.engine)
        finally:
            await client.close()
    finally:
        server.stop()

    print(f"\nplan: {plan.users:,} users, {plan.contents:,} contents, seed {plan.seed}")
    print(
        f"bench viewer: id {bench_viewer.id}, {bench_viewer.followed_tags} followed tags,"
        f" {bench_viewer.follows} follows, {bench_viewer.muted_tags} muted tags,"
        f" {bench_viewer.muted_authors} muted authors, {bench_viewer.reactions} reactions"
    )
    print(f"page size {PAGE}; up to {scale.warmup} uncounted warm-up requests per scenario")
    print_table("rebuilding a feed (ms)", rebuilds)
    print_table("in process, one at a time (ms)", reads)
    print_table("search, signed in (ms)", searches)
    print_table("a publication", list(publishes))
    print_facts("stored feeds", stored)
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of a signed-in first page\n{plan_text}")
    print(f"\npeak RSS (python): {peak_rss_mib():,.0f} MiB")
    print_facts("postgres", facts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--contents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=200, help="per read scenario")
    parser.add_argument(
        "--search-requests", type=int, default=None, help="per search (default --requests)"
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument(
        "--budget", type=float, default=120.0, help="seconds per scenario before it stops early"
    )
    parser.add_argument(
        "--sample", type=int, default=300, help="seeded users whose rebuild is timed"
    )
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--publishes", type=int, default=30)
    parser.add_argument("--all-feeds", action="store_true", help="build every user's feed first")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
