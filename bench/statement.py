"""One compiled read statement timed alone, on one connection, as the gateway's read pool
plans it (generic plans): what a document costs Postgres without the HTTP stack around
it, and how much each part of it adds.

    python -m bench.statement                 # the feed's first page, and its parts
    python -m bench.statement --document 'query($first: Int!) { contents(first: $first) { edges { node { id } } } }'

Uses the bench database bench.feed prepares (--data-dir) and its bench viewer (signed in)
for feed documents; contents and other documents run as an anonymous viewer unless
--signed-in. Prints p50 and p90 over --runs executions after 20 warm-ups.
"""

import argparse
import asyncio
import time
from pathlib import Path

import asyncpg

from bench import feed as feed_bench
from bench.common import DEFAULT_DATA_DIR, database_name, progress, today_midnight_utc
from db.embedded import EmbeddedPostgres, asyncpg_dsn
from db.seed import SeedPlan
from resolvers.viewer import Viewer

FEED = feed_bench.FEED
# The feed's first page with parts of its selection left out, and the list beside it.
PARTS = {
    "feed first page (bench.http's document)": (FEED, True),
    "... without tags": (FEED.replace(" tags { id name }", ""), True),
    "... ids only": (
        "query($first: Int!) { feed(first: $first) { edges { node { id } } "
        "pageInfo { hasNextPage } } }",
        True,
    ),
    "contents(first: 20), the same fields, anonymous": (
        FEED.replace("feed(first: $first)", "contents(first: $first)").replace(
            "viewerHasReacted ", ""
        ),
        False,
    ),
}


async def timed(
    client: feed_bench.Client, document: str, viewer: Viewer, runs: int, planning: str
) -> str:
    sql, arguments = feed_bench.compiled_statement(client, document, viewer)
    conn = await asyncpg.connect(asyncpg_dsn(client.url))
    try:
        # As db/read_pool.py's pools run it.
        await conn.execute(f"SET plan_cache_mode = {planning}; SET random_page_cost = 1.1")
        statement = await conn.prepare(sql)
        for _ in range(20):
            await statement.fetch(*arguments)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await statement.fetch(*arguments)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    times.sort()
    return f"p50 {times[len(times) // 2]:.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f} ms"


async def run(args: argparse.Namespace) -> None:
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    server = EmbeddedPostgres(args.data_dir)
    try:
        url = server.url(database_name(plan))
        client = feed_bench.Client(url, 2)
        try:
            parts = {"--document": (args.document, args.signed_in)} if args.document else PARTS
            member = Viewer.anonymous()
            if any(signed_in for _, signed_in in parts.values()):
                rows = await client.db.fetch(
                    "SELECT id FROM users WHERE handle = $1", feed_bench.VIEWER_HANDLE
                )
                if not rows:
                    raise SystemExit("no bench viewer: run python -m bench.feed once first")
                member = Viewer.member(int(rows[0][0]))
            for name, (document, signed_in) in parts.items():
                progress(name)
                viewer = member if signed_in else Viewer.anonymous()
                print(
                    f"{name:50} {await timed(client, document, viewer, args.runs, args.planning)}"
                )
        finally:
            await client.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--contents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--document", help="one document instead of the feed's parts")
    parser.add_argument("--signed-in", action="store_true", help="--document as the viewer")
    parser.add_argument(
        "--planning",
        default="force_generic_plan",
        choices=["force_generic_plan", "force_custom_plan", "auto"],
        help="plan_cache_mode, as the read pool the statement goes to sets it",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
