"""Load test for live updates: N WebSocket subscribers on one gateway (A), events
published through a second one (B).

    python -m bench.subscribers --subscribers 10000 --events 20 --rate 1 --pin
    python -m bench.subscribers --subscribers 20000 --events 20 --rate 1 --workers 2

Starts an embedded Postgres in a temporary folder and two `gateway serve` processes on
127.0.0.1 (A with --workers). Half the subscribers are signed in (each its own user; a
fifth of them muted the tag #noise, a quarter subscribe only to #python), half
anonymous; they subscribe to `contentEvents`. Publishes --events pieces of content (tags
cycling #python, #noise, none) at --rate per second, after --warmup events that are not
counted (a process's first event compiles its statements), and reports connect time,
event-to-delivery latency (from sending the publish request to the subscriber reading
the frame), lost and duplicated deliveries against what each subscriber should get, and
gateway A's CPU time and RSS (with its workers).

The subscribers are lean raw-socket clients (bench/ws_load.py) in --load-processes
processes of their own. --pin gives gateway A (and its workers) CPU 0 and everything
else (the load generator, gateway B, Postgres) the other CPUs, so A's figures are its
own core's and the load generator never takes A's time.
"""

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.ws_load import Spec, run_subscribers
from db import migrate
from db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from db.session import create_engine
from gateway.auth import Tokens
from tests.live_server import GatewayProcess

SECRET = "bench-secret-not-for-production-0123456789"
QUERY = (
    "subscription($tags: [String!]) { contentEvents(tags: $tags) { cursor content { title"
    " author { handle } tags { name } viewerHasReacted } } }"
)
EVENT_TAGS: tuple[list[str], ...] = (["python"], ["noise"], [])
# Sockets one load process holds (this machine allows 20,000 descriptors a process).
PER_PROCESS = 9_000


@dataclass(eq=False)
class Subscriber:
    spec: Spec
    mutes_noise: bool

    def expects(self, tags: list[str]) -> bool:
        if self.mutes_noise and "noise" in tags:
            return False
        return not (self.spec.only_python and "python" not in tags)


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


def _family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _rss(pid: int) -> int:
    return sum(p.memory_info().rss for p in _family(pid))


def _cpu(pid: int) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in _family(pid))


def _pin(args: argparse.Namespace, a: GatewayProcess, pgdata: Path) -> None:
    """Gateway A (and its workers) on CPU 0; everything else on the other CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if not args.pin or len(cpus) < 2:
        return
    rest = set(cpus[1:])
    for process in _family(a.process.pid):
        os.sched_setaffinity(process.pid, {cpus[0]})
    os.sched_setaffinity(0, rest)
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" or str(pgdata) in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(process.pid, rest)


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
        Subscriber(Spec(tokens.issue(uid, 0).token, only_python=(i % 4 == 1)), i % 5 == 0)
        for i, uid in enumerate(viewer_ids)
    ] + [
        Subscriber(Spec(None, only_python=(i % 4 == 1)), False)
        for i in range(args.subscribers - signed_in)
    ]

    # Every subscriber connects from 127.0.0.x: lift the per-address limits.
    many: dict[str, Any] = {
        "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
        "GATEWAY_SUBSCRIPTION_COST_PER_CLIENT": "100000000",
        "GATEWAY_SUBSCRIPTION_COST_PER_PROCESS": "100000000",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    workers = ("--workers", str(args.workers)) if args.workers > 1 else ()
    a = GatewayProcess(
        url, SECRET, workdir / "a.log", serve_args=workers, **many, **dict(args.gateway_setting)
    )
    b = GatewayProcess(url, SECRET, workdir / "b.log", **many)
    context = multiprocessing.get_context("spawn")
    loaders: list[Any] = []
    try:
        await asyncio.to_thread(a.wait_ready)
        await asyncio.to_thread(b.wait_ready)
        _pin(args, a, workdir)
        others = [psutil.Process(b.process.pid), psutil.Process()]
        rss_idle = _rss(a.process.pid)
        cpu_before = _cpu(a.process.pid)

        processes = args.load_processes or math.ceil(len(subscribers) / PER_PROCESS)
        shares = [subscribers[n::processes] for n in range(processes)]
        cpus = os.sched_getaffinity(0) if args.pin else None
        results = context.Queue()
        stop = context.Event()
        started = time.perf_counter()
        for n, share in enumerate(shares):
            ready = context.Event()
            process = context.Process(
                target=run_subscribers,
                args=(
                    n,
                    a.port,
                    QUERY,
                    [s.spec for s in share],
                    args.connect_concurrency,
                    f"127.0.0.{n + 1}",
                    cpus,
                    ready,
                    stop,
                    results,
                ),
            )
            process.start()
            loaders.append((process, ready))
        for process, ready in loaders:
            while not await asyncio.to_thread(ready.wait, 1.0):
                if not process.is_alive():
                    raise RuntimeError("a load process died while connecting")
        connect_wall = time.perf_counter() - started
        others += [psutil.Process(p.pid) for p, _ in loaders]
        await asyncio.sleep(2.0)
        rss_connected = _rss(a.process.pid)
        cpu_connected = _cpu(a.process.pid)
        others_connected = sum(sum(p.cpu_times()[:2]) for p in others)

        sent: dict[str, tuple[float, list[str]]] = {}
        async with httpx.AsyncClient(
            base_url=b.url, headers={"Authorization": f"Bearer {author_token}"}, timeout=30
        ) as http:
            for n in range(-args.warmup, args.events):
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
                if n >= 0:  # warm-up events are not counted
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
        cpu_events = _cpu(a.process.pid)
        others_events = sum(sum(p.cpu_times()[:2]) for p in others)
        rss_after = _rss(a.process.pid)
        stop.set()
        received_by_share = [await asyncio.to_thread(results.get) for _ in loaders]
        connect_times = [t for _, _, times in received_by_share for t in times]
        by_share = {index: received for index, received, _ in received_by_share}

        latencies: list[float] = []
        per_event: dict[str, list[float]] = {}
        expected = lost = duplicated = 0
        for index, share in enumerate(shares):
            for subscriber, received in zip(share, by_share[index], strict=True):
                for title, (at, tags) in sent.items():
                    if subscriber.expects(tags):
                        expected += 1
                        times = received.get(title, [])
                        if not times:
                            lost += 1
                        else:
                            latencies.append((times[0] - at) * 1000)
                            per_event.setdefault(title, []).append((times[0] - at) * 1000)
                            duplicated += len(times) - 1
                    elif title in received:
                        duplicated += len(received[title])  # delivered against its filter
                duplicated += sum(
                    len(times)
                    for title, times in received.items()
                    if title not in sent and not title.startswith("event -")
                )

        if args.per_event:
            for title, values in per_event.items():
                print(
                    f"  {title}: first {min(values):.0f} ms, p50 {_percentile(values, 0.5):.0f},"
                    f" last {max(values):.0f} ({len(values)} deliveries)"
                )
        mib = 1024 * 1024
        print(
            f"subscribers: {args.subscribers} ({signed_in} signed in) on gateway A"
            f" ({args.workers} worker{'s' if args.workers > 1 else ''}), events: {args.events}"
            f" at {args.rate}/s, pinned: {'yes' if args.pin else 'no'},"
            f" load processes: {len(loaders)}, {os.cpu_count()} CPUs"
        )
        print(
            f"connect+ack+subscribe: wall {connect_wall:.1f}s, per socket p50"
            f" {statistics.median(connect_times) * 1000:.0f} ms, p99"
            f" {_percentile(connect_times, 0.99) * 1000:.0f} ms"
        )
        print(f"deliveries expected {expected}, lost {lost}, duplicated or unwanted {duplicated}")
        print(
            f"event-to-delivery latency ms: p50 {_percentile(latencies, 0.5):.0f}, p90"
            f" {_percentile(latencies, 0.9):.0f}, p99 {_percentile(latencies, 0.99):.0f}, max"
            f" {max(latencies, default=float('nan')):.0f}"
        )
        per_socket = (rss_connected - rss_idle) / args.subscribers / 1024
        print(
            f"gateway A RSS MiB: idle {rss_idle / mib:.0f}, connected {rss_connected / mib:.0f},"
            f" after events {rss_after / mib:.0f}; {per_socket:.1f} KiB per connected socket"
        )
        delivered = len(latencies) + duplicated
        print(
            f"gateway A CPU s: connecting {cpu_connected - cpu_before:.1f}, events"
            f" {cpu_events - cpu_connected:.1f}"
            f" ({(cpu_events - cpu_connected) / max(delivered, 1) * 1e6:.0f} us per delivery)"
        )
        print(
            f"load generator + gateway B CPU s during events: {others_events - others_connected:.1f}"
        )
    finally:
        for process, _ in loaders:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
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
        "--connect-concurrency",
        type=int,
        default=100,
        help="sockets connecting at once, per process",
    )
    parser.add_argument("--rate", type=float, default=4.0, help="events per second")
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds to wait for the last deliveries"
    )
    parser.add_argument("--workers", type=int, default=1, help="gateway A's worker processes")
    parser.add_argument("--pin", action="store_true", help="gateway A alone on CPU 0")
    parser.add_argument(
        "--gateway-setting",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="a setting for gateway A (repeatable), e.g. GATEWAY_LIVE_DB_CONNECTIONS=4",
    )
    parser.add_argument("--per-event", action="store_true", help="latency of each event")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="events published first and not counted (a process's first event compiles"
        " and plans its statements)",
    )
    parser.add_argument(
        "--load-processes", type=int, default=0, help="subscriber processes (0: one per 9,000)"
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="subscribers-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
