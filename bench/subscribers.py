"""Load test for live updates: N WebSocket subscribers on one gateway process, events
published through a second one.

    python -m bench.subscribers --subscribers 1000 --events 40

Starts an embedded Postgres in a temporary folder and two `gateway serve` processes on
127.0.0.1. Half the subscribers are signed in (each its own user; some muted the tag
#noise, some subscribe only to #python), half anonymous. Publishes `--events` pieces of
content (tags cycling #python, #noise, none) at `--rate` per second and reports connect
time, event-to-delivery latency (from the moment the publish request is sent), lost and
duplicated deliveries against what each subscriber should get, and the subscriber
process's CPU time and RSS.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

from db import migrate
from db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from db.session import create_engine
from gateway.auth import Tokens
from tests.live_server import GatewayProcess

SECRET = "bench-secret-not-for-production-0123456789"
QUERY = "subscription($tags: [String!]) { contentPublished(tags: $tags) { title author { handle } tags { name } viewerHasReacted } }"
EVENT_TAGS: tuple[list[str], ...] = (["python"], ["noise"], [])


@dataclass(eq=False)
class Subscriber:
    token: str | None
    mutes_noise: bool
    only_python: bool
    received: dict[str, list[float]] = field(default_factory=dict)
    socket: ClientConnection | None = None

    def expects(self, tags: list[str]) -> bool:
        if self.mutes_noise and "noise" in tags:
            return False
        return not (self.only_python and "python" not in tags)

    async def connect(self, url: str, *, compression: bool = True) -> float:
        started = time.perf_counter()
        self.socket = await connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            max_queue=None,
            open_timeout=120,
            compression="deflate" if compression else None,
        )
        payload = {"authorization": f"Bearer {self.token}"} if self.token else {}
        await self.socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        while json.loads(await self.socket.recv())["type"] != "connection_ack":
            pass
        variables = {"tags": ["python"]} if self.only_python else {}
        await self.socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": variables},
                }
            )
        )
        return time.perf_counter() - started

    async def listen(self) -> None:
        assert self.socket is not None
        async for raw in self.socket:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
            elif message["type"] == "next":
                title = message["payload"]["data"]["contentPublished"]["title"]
                self.received.setdefault(title, []).append(now)


async def _prepare_users(url: str, count: int) -> list[int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table(
            "users",
            records=[
                (f"sub_{i}", f"sub_{i}@example.com", "x", f"Subscriber {i}")
                for i in range(count + 1)
            ],
            columns=["handle", "email", "password_hash", "display_name"],
        )
        ids = [row["id"] for row in await conn.fetch("SELECT id FROM users ORDER BY id")]
        await conn.execute("INSERT INTO tags (name) VALUES ('python'), ('noise')")
        return ids
    finally:
        await conn.close()


async def _mute_noise(url: str, user_ids: list[int]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.executemany(
            "INSERT INTO preferences (user_id) VALUES ($1)", [(u,) for u in user_ids]
        )
        await conn.executemany(
            "INSERT INTO muted_tags (user_id, tag_id) SELECT $1, id FROM tags WHERE name = 'noise'",
            [(u,) for u in user_ids],
        )
    finally:
        await conn.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, workdir: Path) -> None:
    server = EmbeddedPostgres(workdir)
    url = server.url("subscribers_bench")
    await ensure_database(server.url("postgres"), "subscribers_bench")
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    signed_in = args.subscribers // 2
    user_ids = await _prepare_users(url, signed_in)
    author_id, viewer_ids = user_ids[0], user_ids[1:]
    await _mute_noise(url, viewer_ids[::5])
    tokens = Tokens(SECRET, timedelta(hours=4))
    author_token = tokens.issue(author_id, 0).token

    subscribers = [
        Subscriber(tokens.issue(uid, 0).token, mutes_noise=(i % 5 == 0), only_python=(i % 4 == 1))
        for i, uid in enumerate(viewer_ids)
    ] + [
        Subscriber(None, mutes_noise=False, only_python=(i % 4 == 1))
        for i in range(args.subscribers - signed_in)
    ]

    # Every subscriber connects from 127.0.0.1: lift the per-address connection cap.
    many = "1000000"
    a = GatewayProcess(url, SECRET, workdir / "a.log", GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=many)
    b = GatewayProcess(url, SECRET, workdir / "b.log", GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=many)
    try:
        await asyncio.to_thread(a.wait_ready)
        await asyncio.to_thread(b.wait_ready)
        gateway = psutil.Process(a.process.pid)
        publisher = psutil.Process(b.process.pid)
        me = psutil.Process()
        rss_idle = gateway.memory_info().rss
        cpu_before = sum(gateway.cpu_times()[:2])

        limit = asyncio.Semaphore(args.connect_concurrency)

        async def connect_one(subscriber: Subscriber) -> float:
            async with limit:
                return await subscriber.connect(a.ws_url, compression=not args.no_compression)

        started = time.perf_counter()
        connect_times = await asyncio.gather(*(connect_one(s) for s in subscribers))
        connect_wall = time.perf_counter() - started
        listeners = [asyncio.create_task(s.listen()) for s in subscribers]
        await asyncio.sleep(1.0)
        rss_connected = gateway.memory_info().rss
        cpu_connected = sum(gateway.cpu_times()[:2])
        others_connected = sum(me.cpu_times()[:2]) + sum(publisher.cpu_times()[:2])

        sent: dict[str, tuple[float, list[str]]] = {}
        async with httpx.AsyncClient(
            base_url=b.url, headers={"Authorization": f"Bearer {author_token}"}, timeout=30
        ) as http:
            for n in range(args.events):
                tags = EVENT_TAGS[n % len(EVENT_TAGS)]
                title = f"event {n}"
                created = await http.post(
                    "/graphql",
                    json={
                        "query": "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
                        "variables": {"i": {"title": title, "body": "b", "tags": tags}},
                    },
                )
                content_id = created.json()["data"]["createContent"]["id"]
                sent[title] = (time.perf_counter(), tags)
                await http.post(
                    "/graphql",
                    json={
                        "query": "mutation($id: ID!) { publishContent(id: $id) { id } }",
                        "variables": {"id": content_id},
                    },
                )
                await asyncio.sleep(1 / args.rate)
        await asyncio.sleep(args.settle)
        cpu_events = sum(gateway.cpu_times()[:2])
        others_events = sum(me.cpu_times()[:2]) + sum(publisher.cpu_times()[:2])
        rss_after = gateway.memory_info().rss

        latencies: list[float] = []
        expected = lost = duplicated = 0
        for subscriber in subscribers:
            for title, (at, tags) in sent.items():
                if subscriber.expects(tags):
                    expected += 1
                    times = subscriber.received.get(title, [])
                    if not times:
                        lost += 1
                    else:
                        latencies.append((times[0] - at) * 1000)
                        duplicated += len(times) - 1
                elif title in subscriber.received:
                    duplicated += len(subscriber.received[title])  # delivered against its filter
        for task in listeners:
            task.cancel()
        for subscriber in subscribers:
            if subscriber.socket is not None:
                await subscriber.socket.close()

        mib = 1024 * 1024
        print(
            f"subscribers: {args.subscribers} ({signed_in} signed in), events: {args.events} at {args.rate}/s,"
            f" subscribers offer permessage-deflate: {'no' if args.no_compression else 'yes'}"
        )
        print(
            f"connect+ack+subscribe: wall {connect_wall:.1f}s, per socket p50 {statistics.median(connect_times) * 1000:.0f} ms, p99 {_percentile(connect_times, 0.99) * 1000:.0f} ms"
        )
        print(f"deliveries expected {expected}, lost {lost}, duplicated or unwanted {duplicated}")
        print(
            f"event-to-delivery latency ms: p50 {_percentile(latencies, 0.5):.0f}, p90 {_percentile(latencies, 0.9):.0f}, p99 {_percentile(latencies, 0.99):.0f}, max {max(latencies, default=float('nan')):.0f}"
        )
        print(
            f"gateway A RSS MiB: idle {rss_idle / mib:.0f}, connected {rss_connected / mib:.0f}, after events {rss_after / mib:.0f}"
        )
        delivered = len(latencies) + duplicated
        print(
            f"gateway A CPU s: connecting {cpu_connected - cpu_before:.1f}, events {cpu_events - cpu_connected:.1f}"
            f" ({(cpu_events - cpu_connected) / max(delivered, 1) * 1e6:.0f} us per delivery)"
        )
        print(
            f"same cores, during events: load generator + publishing gateway B CPU s {others_events - others_connected:.1f}"
        )
    finally:
        a.stop()
        b.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument(
        "--connect-concurrency", type=int, default=100, help="sockets connecting at once"
    )
    parser.add_argument("--rate", type=float, default=4.0, help="events per second")
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds to wait for the last deliveries"
    )
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="subscribers do not offer permessage-deflate (as if the server refused it)",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="subscribers-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
