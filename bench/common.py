"""Pieces shared by the benchmarks: a persistent embedded Postgres with seeded data,
latency statistics and the process's peak memory."""

import hashlib
import math
import re
import resource
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from db import migrate
from db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from db.seed import SeedPlan, is_empty, seed_database
from db.seed.schema import SEEDED_TABLES
from db.session import create_engine
from gateway.progress import ProgressBar

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".bench-data"


def today_midnight_utc() -> datetime:
    """The seed's reference time: the data ends today, so windows counted back from
    the wall clock (the feed's 30 recent days) find content."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def database_name(plan: SeedPlan) -> str:
    # One database per scale, so a smaller trial run never reuses (or blocks) the big one.
    return f"bench_{plan.users}u_{plan.contents}c_s{plan.seed}"


@dataclass(frozen=True, slots=True)
class Prepared:
    url: str
    seeded_now: bool
    seed_seconds: float
    vacuum_seconds: float | None  # None: an earlier run had vacuumed already


async def prepare_database(server: EmbeddedPostgres, plan: SeedPlan) -> Prepared:
    """Creates, migrates and seeds the plan's database unless an earlier run did."""
    server_url = server.url("postgres")
    name = database_name(plan)
    await ensure_database(server_url, name)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    seeded_now = await is_empty(url)
    seed_seconds = 0.0
    if seeded_now:
        started = time.perf_counter()
        await seed_database(url, plan, progress=ProgressBar())
        seed_seconds = time.perf_counter() - started
    return Prepared(url, seeded_now, seed_seconds, await vacuum_if_never_vacuumed(url))


async def vacuum_if_never_vacuumed(url: str) -> float | None:
    """VACUUM (ANALYZE) the seeded tables unless that already happened.

    The seed only ANALYZEs, so its pages are not yet marked all-visible: index-only
    scans then visit the heap for every row, and autovacuum would soon start on its
    own and compete with the benchmark for the two cores. Vacuuming first measures
    the steady state a production database is in."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        pending = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = ANY($1::text[])"
            " AND last_vacuum IS NULL AND last_autovacuum IS NULL",
            list(SEEDED_TABLES),
        )
        if not pending:
            return None
        started = time.perf_counter()
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}", timeout=None)
        return time.perf_counter() - started
    finally:
        await conn.close()


def progress(message: str) -> None:
    """A line about where a long run is, on stderr (the results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this reads 1024x too high).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: always a latency that was actually observed."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Latency":
        ms = sorted(s * 1000 for s in seconds)
        return cls(
            count=len(ms),
            p50=percentile(ms, 0.50),
            p90=percentile(ms, 0.90),
            p99=percentile(ms, 0.99),
            max=ms[-1] if ms else math.nan,
        )


_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")


@asynccontextmanager
async def database_settings(url: str, settings: Mapping[str, str]) -> AsyncIterator[None]:
    """Postgres settings for every connection opened to the database meanwhile
    (ALTER DATABASE ... SET), reset afterwards: a what-if run such as
    random_page_cost=1.1 without touching the code under test."""
    if not settings:
        yield
        return
    for name in settings:
        if not _SETTING_NAME.match(name):
            raise ValueError(f"not a setting name: {name!r}")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        database = await conn.fetchval("SELECT quote_ident(current_database())")
        for name, value in settings.items():
            literal = await conn.fetchval("SELECT quote_literal($1::text)", value)
            await conn.execute(f"ALTER DATABASE {database} SET {name} = {literal}")
        try:
            yield
        finally:
            for name in settings:
                await conn.execute(f"ALTER DATABASE {database} RESET {name}")
    finally:
        await conn.close()


def source_digest(path: Path) -> str:
    """Ties printed figures to the exact version of a module that produced them."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
