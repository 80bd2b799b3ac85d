"""What live events cost writers: concurrent `react` mutations with events on and off.

    python -m bench.writers --writers 8 --seconds 10 --rounds 3

Starts an embedded Postgres in a temporary folder and one `gateway serve` on 127.0.0.1.
An author has published --contents articles; --writers signed-in members each react to
articles of their own, one after another as fast as they are answered (closed loop, one
keep-alive connection each), every reaction to an article not reacted to before, so each
writes a reaction, a REACTION notification to the author and, with events on, the
notification's event (and the author, subscribed to notificationEvents, gets it live).
Runs alternate GATEWAY_EVENTS=true and false, each on a fresh gateway, so drift on a
shared machine falls on both; reported per run: mutations per second, p50/p99 latency,
and how many events the author's subscription received.

With --log-capacity it measures the log itself instead: --writers connections append
events as fast as Postgres commits them (each its own transaction, as a write does) while
one follower reads them, and reports events per second appended and followed.
"""

import argparse
import asyncio
import functools
import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from websockets.asyncio.client import connect

from bench.load import Connection, Request
from db import migrate
from db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from db.session import create_engine
from gateway.auth import Tokens
from resolvers.ids import encode_id
from tests.live_server import GatewayProcess

SECRET = "bench-secret-not-for-production-0123456789"
REACT = "mutation($id: ID!) { react(contentId: $id) { id } }"


async def _prepare(url: str, writers: int, contents: int) -> tuple[int, list[int], list[int]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table(
            "users",
            records=[
                (f"writer_{i}", f"writer_{i}@example.com", "x", f"Writer {i}")
                for i in range(writers + 1)
            ],
            columns=["handle", "email", "password_hash", "display_name"],
        )
        ids = [row["id"] for row in await conn.fetch("SELECT id FROM users ORDER BY id")]
        author = ids[0]
        await conn.execute(
            "INSERT INTO contents (author_id, title, body, status, published_at)"
            " SELECT $1, 'article ' || n, 'a body', 'PUBLISHED', now()"
            " FROM generate_series(1, $2) AS n",
            author,
            contents,
        )
        content_ids = [r["id"] for r in await conn.fetch("SELECT id FROM contents ORDER BY id")]
        await conn.execute("VACUUM ANALYZE")
        return author, ids[1:], content_ids
    finally:
        await conn.close()


async def _author_listens(ws_url: str, token: str, got: list[int], ready: asyncio.Event) -> None:
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        query = "subscription { notificationEvents { cursor notification { kind } } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                got[0] += 1
            elif message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))


async def _run_writers(
    port: int, tokens: list[str], articles: list[list[int]], seconds: float
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(token: str, mine: list[int]) -> None:
        nonlocal done
        connection = await Connection.open("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            for content_id in mine:
                if time.perf_counter() >= deadline:
                    return
                request = Request.post_json(
                    "127.0.0.1",
                    port,
                    "/graphql",
                    {"query": REACT, "variables": {"id": encode_id("Content", content_id)}},
                    headers,
                )
                started = time.perf_counter()
                status, body = await connection.send(request.raw)
                if status != 200 or b'"errors"' in body:
                    raise RuntimeError(f"react failed: {status} {body[:300]!r}")
                latencies.append(time.perf_counter() - started)
                done += 1
        finally:
            await connection.close()

    await asyncio.gather(*(writer(t, m) for t, m in zip(tokens, articles, strict=True)))
    return done, latencies


async def _one_run(
    args: argparse.Namespace,
    url: str,
    workdir: Path,
    events: bool,
    tokens: list[str],
    author_token: str,
    articles: list[list[int]],
) -> dict[str, Any]:
    gateway = GatewayProcess(
        url,
        SECRET,
        workdir / f"gateway-{events}-{time.monotonic_ns()}.log",
        GATEWAY_EVENTS="true" if events else "false",
        GATEWAY_RATE_LIMIT_CAPACITY="100000000",
        GATEWAY_RATE_LIMIT_REFILL="100000000",
        GATEWAY_LOG_LEVEL="WARNING",
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        got = [0]
        ready = asyncio.Event()
        listener = asyncio.create_task(_author_listens(gateway.ws_url, author_token, got, ready))
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(0.5)
        done, latencies = await _run_writers(gateway.port, tokens, articles, args.seconds)
        await asyncio.sleep(1.0)
        listener.cancel()
        ordered = sorted(latencies)
        return {
            "events": events,
            "rate": done / args.seconds,
            "p50": statistics.median(ordered) * 1000,
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            "mutations": done,
            "received": got[0],
        }
    finally:
        gateway.stop()


async def writers(args: argparse.Namespace, workdir: Path, url: str) -> None:
    total = args.writers * args.per_writer * args.rounds * 2
    author, writer_ids, content_ids = await _prepare(url, args.writers, total)
    sign = Tokens(SECRET, timedelta(hours=4))
    tokens = [sign.issue(w, 0).token for w in writer_ids]
    author_token = sign.issue(author, 0).token
    fresh = iter(content_ids)
    results = []
    for round_ in range(args.rounds):
        for events in (True, False):
            articles = [[next(fresh) for _ in range(args.per_writer)] for _ in range(args.writers)]
            result = await _one_run(args, url, workdir, events, tokens, author_token, articles)
            result["round"] = round_ + 1
            results.append(result)
            print(
                f"round {result['round']} events {'on ' if events else 'off'}:"
                f" {result['rate']:7.1f} mutations/s, p50 {result['p50']:5.1f} ms,"
                f" p99 {result['p99']:6.1f} ms, {result['mutations']} reactions,"
                f" {result['received']} events received live",
                flush=True,
            )
    on = [r["rate"] for r in results if r["events"]]
    off = [r["rate"] for r in results if not r["events"]]
    print(
        f"\n{args.writers} writers: events on {statistics.mean(on):.1f} mutations/s,"
        f" off {statistics.mean(off):.1f}: {statistics.mean(on) / statistics.mean(off):.2f}x"
    )


async def log_capacity(args: argparse.Namespace, url: str) -> None:
    """Appends as fast as `--writers` connections commit, one event per transaction, while
    one follower reads; events per second both ways."""
    from db.event_log import START
    from db.log_follower import LogFollower
    from db.session import Database

    engine = create_engine(url, pool_size=args.writers)
    db = Database(engine)
    followed = [0]
    follower = LogFollower(functools.partial(db.fetch, primary=True), poll_seconds=0.01)

    async def count(_event: Any) -> None:
        followed[0] += 1

    follower.position = START
    follower.start(count, lost=lambda: None)
    stop_at = time.perf_counter() + args.seconds
    appended = [0]

    async def appender() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            while time.perf_counter() < stop_at:
                await conn.execute(
                    "INSERT INTO event_log (tx, kind, body) VALUES"
                    " (pg_current_xact_id()::text::bigint, 'test', '{\"id\": 1}')"
                )
                appended[0] += 1
                follower.wake()
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(args.writers)))
    elapsed = time.perf_counter() - started
    followed_by_end = followed[0]
    # Looked at every few milliseconds rather than signalled from the handler: the
    # measurement must end even if the follower never catches up (it says so then).
    give_up = time.perf_counter() + 120
    while followed[0] < appended[0] and time.perf_counter() < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    caught_up = time.perf_counter() - started
    await follower.stop()
    await engine.dispose()
    if followed[0] < appended[0]:
        print(f"the follower read {followed[0]:,} of {appended[0]:,} events within 120 s")
    print(
        f"{args.writers} connections appending for {elapsed:.1f} s: {appended[0] / elapsed:,.0f}"
        f" events/s appended; followed {followed_by_end / elapsed:,.0f}/s meanwhile, all"
        f" {appended[0]:,} read {caught_up - elapsed:.2f} s after the last append"
    )


async def run(args: argparse.Namespace, workdir: Path) -> None:
    server = EmbeddedPostgres(workdir)
    url = server.url("writers_bench")
    await ensure_database(server.url("postgres"), "writers_bench")
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    try:
        if args.log_capacity:
            await log_capacity(args, url)
        else:
            await writers(args, workdir, url)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--per-writer", type=int, default=4000, help="articles each writer may react to per run"
    )
    parser.add_argument("--log-capacity", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="writers-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
