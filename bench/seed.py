"""Time the demo seed against a throwaway embedded Postgres.

    python -m bench.seed --users 100000 --contents 1000000

Prints wall time per stage and in total, the peak RSS of this Python process,
the database size and the row count of every seeded table.
"""

import argparse
import asyncio
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from db import migrate
from db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from db.seed import SeedPlan, SeedReport, seed_database
from db.seed.schema import SEEDED_TABLES
from db.session import create_engine
from gateway.progress import ProgressBar

DATABASE = "seed_bench"


@dataclass(slots=True)
class StageClock:
    """Wraps the progress callback to time each stage from its first report to the next's."""

    bar: ProgressBar
    started: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)  # stage -> first seen

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.stages.setdefault(stage, time.perf_counter())
        self.bar(stage, done, total)

    def durations(self, ended: float) -> list[tuple[str, float]]:
        marks = [("prepare", self.started), *self.stages.items(), ("", ended)]
        return [(name, marks[i + 1][1] - at) for i, (name, at) in enumerate(marks[:-1])]


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this reads 1024x too high).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in SEEDED_TABLES}


async def run(plan: SeedPlan, data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    try:
        server_url = server.url("postgres")
        await ensure_database(server_url, DATABASE)
        url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()

        clock = StageClock(ProgressBar())
        report = await seed_database(url, plan, progress=clock)
        ended = time.perf_counter()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            counts = await _row_counts(conn)
        finally:
            await conn.close()
        _print_summary(plan, report, clock.durations(ended), ended - clock.started, size, counts)
    finally:
        server.stop()


def _print_summary(
    plan: SeedPlan,
    report: SeedReport,
    durations: list[tuple[str, float]],
    total: float,
    size: int,
    counts: dict[str, int],
) -> None:
    print(f"\nseed plan: {plan.users:,} users, {plan.contents:,} contents, seed {plan.seed}")
    print("stage              seconds")
    for name, seconds in durations:
        print(f"  {name:<16} {seconds:8.1f}")
    print(f"  {'total':<16} {total:8.1f}")
    print(f"peak RSS (python): {_peak_rss_mib():,.0f} MiB")
    print(f"database size:     {size / 2**20:,.0f} MiB")
    print("rows:")
    for table, count in counts.items():
        print(f"  {table:<16} {count:>12,}")
    logins = ", ".join(login.handle for login in report.demo_logins)
    print(f"demo logins: {logins} (password {report.demo_logins[0].password!r})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--contents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    plan = SeedPlan(users=args.users, contents=args.contents, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp:
        asyncio.run(run(plan, Path(tmp)))


if __name__ == "__main__":
    main()
