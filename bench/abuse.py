"""A normal client's latency while abusive clients run (issue 15), and the gateway's
memory before, during and after.

    python -m bench.abuse --abuse search          # finding 2: costly and refused reads
    python -m bench.abuse --abuse subscriptions   # finding 1: subscriptions multiplied
    python -m bench.abuse --abuse both

One `gateway serve` (one worker, default settings) on the seeded bench database
(bench/common.py; --users/--contents, 10,000 / 100,000 by default). Every simulated
client has its own address: the gateway trusts X-Forwarded-For from 127.0.0.1 here
(GATEWAY_TRUSTED_PROXIES), as behind a proxy, and each client sends its own.

The normal client, signed in, sends a mix of ordinary requests at --rate a second (open
loop: a slow answer does not slow the sending): a page of contents with authors and tags,
one content by id, a search for a common word, the viewer's notifications, and the feed.
It runs alone for --baseline seconds, then for --duration seconds beside the abuse, then
for --settle seconds after the abuse stopped.

Abuse `search` (the issue's finding 2), --abusers anonymous clients, each sending as fast
as it is answered, turn about: --aliases (20) aliases of a search that only excludes
words, with `first: 0`, and as many aliases of `feed(first: 0)`.

Abuse `subscriptions` (finding 1): --sockets anonymous WebSockets with --per-socket
subscriptions each of the issue's heavy document, while an author archives and publishes
one article --cycles times.

Reported: the normal client's latency per phase (overall and per operation) and every
error code it got; the abusers' answers by HTTP status and code; the gateway's RSS when
idle (end of the baseline), at its peak, and at the end (after --settle).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.common import (
    DEFAULT_DATA_DIR,
    Latency,
    database_name,
    prepare_database,
    progress,
    today_midnight_utc,
)
from bench.load import BadResponse, Connection, Request
from db.embedded import EmbeddedPostgres
from db.seed import SeedPlan
from db.session import create_engine
from gateway.auth import Tokens
from resolvers.ids import encode_id
from tests.live_server import GatewayProcess

SECRET = "bench-secret-not-for-production-0123456789"
NORMAL_ADDRESS = "203.0.113.10"
NEGATIONS = " ".join("-" + c for c in string.ascii_lowercase * 2 + string.digits)


def search_flood(aliases: int) -> str:
    fields = (
        f'a{i}: search(query: "{NEGATIONS}", first: 0) {{ pageInfo {{ hasNextPage }} }}'
        for i in range(aliases)
    )
    return "{ " + " ".join(fields) + " }"


def feed_flood(aliases: int) -> str:
    fields = (f"a{i}: feed(first: 0) {{ pageInfo {{ hasNextPage }} }}" for i in range(aliases))
    return "{ " + " ".join(fields) + " }"


HEAVY_SUBSCRIPTION = (
    "subscription { contentPublished { id title author { handle viewerFollows"
    " contents(first: 100) { totalCount edges { node { id title body tags { name"
    " contentCount } } } } } } }"
)
NORMAL_OPERATIONS: dict[str, str] = {
    "contents": "{ contents(first: 20) { edges { node { id title author { handle } tags { name } } } } }",
    "content": "query($id: ID!) { content(id: $id) { title bodyHtml reactionCount author { handle } } }",
    "search": '{ search(query: "python", first: 10) { edges { node { title } } } }',
    "notifications": "{ notifications(first: 10) { edges { node { kind read } } } }",
    "feed": "{ feed(first: 20) { edges { score node { title } } } }",
}


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    codes: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0  # the gateway's, during the phase

    def record(self, operation: str, seconds: float, codes: list[str]) -> None:
        self.latencies.setdefault(operation, []).append(seconds)
        self.codes.update(codes)


@dataclass
class Abusers:
    answers: Counter[str] = field(default_factory=Counter)
    sent: int = 0


def _codes(body: Any) -> list[str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str((e.get("extensions") or {}).get("code")) for e in errors or []]


async def normal_client(
    url: str, token: str, content_id: str, rate: float, phase: Callable[[], Phase | None]
) -> None:
    """Sends the mix at `rate` a second until `phase()` says stop (None)."""
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": NORMAL_ADDRESS}
    names = list(NORMAL_OPERATIONS)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def one(name: str, current: Phase) -> None:
            variables = {"id": content_id} if name == "content" else {}
            started = time.perf_counter()
            try:
                response = await http.post(
                    "/graphql", json={"query": NORMAL_OPERATIONS[name], "variables": variables}
                )
                codes = _codes(response.json())
                if response.status_code != 200 and not codes:
                    codes = [f"HTTP {response.status_code}"]
            except httpx.HTTPError as error:
                codes = [type(error).__name__]
            current.record(name, time.perf_counter() - started, codes)

        n = 0
        next_at = time.perf_counter()
        while (current := phase()) is not None:
            task = asyncio.create_task(one(names[n % len(names)], current))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*pending)


def _code(body: bytes) -> str:
    """The first error code in a response body, found without parsing it: the abusers
    must cost their own process little, or they would slow the machine, not the gateway."""
    at = body.find(b'"code":"')
    return body[at + 8 : body.index(b'"', at + 8)].decode() if at >= 0 else "data"


async def search_abuser(
    url: str, address: str, aliases: int, abusers: Abusers, stop: asyncio.Event
) -> None:
    port = int(url.rsplit(":", 1)[1])
    requests = [
        Request.post_json(
            "127.0.0.1", port, "/graphql", {"query": document}, {"X-Forwarded-For": address}
        ).raw
        for document in (search_flood(aliases), feed_flood(aliases))
    ]
    connection = await Connection.open("127.0.0.1", port)
    n = 0
    try:
        while not stop.is_set():
            abusers.sent += 1
            try:
                status, body = await connection.send(requests[n % 2])
                abusers.answers[f"HTTP {status} {_code(body)}"] += 1
            except (OSError, asyncio.IncompleteReadError, BadResponse) as error:
                abusers.answers[type(error).__name__] += 1
                await connection.close()
                connection = await Connection.open("127.0.0.1", port)
            n += 1
    finally:
        await connection.close()


async def subscription_abuser(
    ws_url: str, address: str, per_socket: int, abusers: Abusers, stop: asyncio.Event
) -> None:
    try:
        async with connect(
            ws_url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers={"X-Forwarded-For": address},
            max_size=None,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            for n in range(per_socket):
                payload = {"query": HEAVY_SUBSCRIPTION}
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
                abusers.sent += 1
            while not stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                message = json.loads(frame)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    codes = _codes(message.get("payload")) or ["data"]
                    abusers.answers[f"next {codes[0]}"] += 1
                elif kind == "error":
                    codes = [str(e.get("extensions", {}).get("code")) for e in message["payload"]]
                    abusers.answers[f"error {codes[0] if codes else message['payload']}"] += 1
                else:
                    abusers.answers[str(kind)] += 1
    except (ConnectionClosed, OSError) as error:
        abusers.answers[f"socket closed: {error}"] += 1


async def publish_cycles(
    url: str, token: str, cycles: int, abusers: Abusers, stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.250"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def gql(query: str, variables: dict[str, Any]) -> Any:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
            return response.json()

        created = await gql(
            "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
            {"i": {"title": "Replayed", "body": "again and again", "tags": ["python"]}},
        )
        content_id = created["data"]["createContent"]["id"]
        for _ in range(cycles):
            if stop.is_set():
                return
            await gql("mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": content_id})
            abusers.answers["publish"] += 1
            await asyncio.sleep(2)
            await gql("mutation($id: ID!) { archiveContent(id: $id) { id } }", {"id": content_id})
            await asyncio.sleep(1)


@dataclass(frozen=True, slots=True)
class Prepared:
    url: str
    token: str
    author_token: str
    content_id: str


async def prepare(args: argparse.Namespace, server: EmbeddedPostgres) -> Prepared:
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    progress(f"database {database_name(plan)} in {args.data_dir}")
    prepared = await prepare_database(server, plan)
    engine = create_engine(prepared.url)
    try:
        async with engine.connect() as conn:
            # The normal client: the user who follows the most people; the author: the
            # most prolific one.
            viewer, version = (
                await conn.execute(
                    sa.text(
                        "SELECT u.id, u.token_version FROM users u JOIN follows f"
                        " ON f.follower_id = u.id GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1"
                    )
                )
            ).one()
            author, author_version = (
                await conn.execute(
                    sa.text(
                        "SELECT u.id, u.token_version FROM users u JOIN contents c"
                        " ON c.author_id = u.id GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1"
                    )
                )
            ).one()
            content = (
                await conn.execute(
                    sa.text(
                        "SELECT id FROM contents WHERE status = 'PUBLISHED'"
                        " AND visibility = 'PUBLIC' ORDER BY id LIMIT 1"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    tokens = Tokens(SECRET, timedelta(hours=4))
    return Prepared(
        prepared.url,
        tokens.issue(viewer, version).token,
        tokens.issue(author, author_version).token,
        encode_id("Content", content),
    )


async def sample_rss(process: psutil.Process, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(process.memory_info().rss)
        await asyncio.sleep(0.5)


def report(phases: list[Phase], abusers: Abusers, rss: dict[str, float], args: Any) -> None:
    mib = 1024 * 1024
    print(
        f"\nabuse: {args.abuse} ({args.aliases} aliases); normal client {args.rate:g} req/s; baseline {args.baseline:g} s,"
        f" abuse {args.duration:g} s, after {args.settle:g} s; {os.cpu_count()} CPUs"
    )
    print("\nnormal client (ms)      n     p50     p90     p99     max   errors / gateway CPU")
    for phase in phases:
        every = [s for values in phase.latencies.values() for s in values]
        rows: list[tuple[str, list[float]]] = [(phase.name, every)]
        rows += [(f"  {name}", values) for name, values in sorted(phase.latencies.items())]
        for label, values in rows:
            lat = Latency.of(values)
            errors = (
                f"{dict(phase.codes) or 'none'}; gateway CPU {phase.cpu_seconds:.1f} s"
                if label == phase.name
                else ""
            )
            print(
                f"{label:<18} {lat.count:>6} {lat.p50:>7.1f} {lat.p90:>7.1f} {lat.p99:>7.1f}"
                f" {lat.max:>7.1f}   {errors or ''}"
            )
    print(f"\nabusers: {abusers.sent} operations sent; answers:")
    for answer, count in abusers.answers.most_common():
        print(f"  {count:>7}  {answer}")
    print(
        f"\ngateway RSS MiB: idle {rss['idle'] / mib:.0f}, peak {rss['peak'] / mib:.0f},"
        f" end {rss['end'] / mib:.0f} ({(rss['end'] / rss['idle'] - 1) * 100:+.1f} % of idle)"
    )


async def run(args: argparse.Namespace) -> None:
    server = EmbeddedPostgres(args.data_dir)
    try:
        prepared = await prepare(args, server)
        with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
            gateway = GatewayProcess(
                prepared.url,
                SECRET,
                Path(tmp) / "gateway.log",
                GATEWAY_TRUSTED_PROXIES="127.0.0.1",
            )
            try:
                await asyncio.to_thread(gateway.wait_ready)
                await measure(args, prepared, gateway)
            finally:
                gateway.stop()
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class AbusePlan:
    kind: str
    url: str
    ws_url: str
    author_token: str
    abusers: int
    aliases: int
    sockets: int
    per_socket: int
    cycles: int


async def abuse(plan: AbusePlan, stop: Any, results: Any) -> None:
    abusers, stop_abuse = Abusers(), asyncio.Event()
    tasks: list[Coroutine[Any, Any, None]] = []
    if plan.kind in ("search", "both"):
        tasks += [
            search_abuser(plan.url, f"198.51.100.{n + 1}", plan.aliases, abusers, stop_abuse)
            for n in range(plan.abusers)
        ]
    if plan.kind in ("subscriptions", "both"):
        tasks += [
            subscription_abuser(
                plan.ws_url, f"198.51.100.{100 + n}", plan.per_socket, abusers, stop_abuse
            )
            for n in range(plan.sockets)
        ]
        tasks.append(publish_cycles(plan.url, plan.author_token, plan.cycles, abusers, stop_abuse))
    running = [asyncio.create_task(task) for task in tasks]
    await asyncio.to_thread(stop.wait)
    stop_abuse.set()
    await asyncio.gather(*running)
    results.put((abusers.sent, dict(abusers.answers)))


def abuse_process(plan: AbusePlan, stop: Any, results: Any) -> None:
    """The abusers run in a process of their own: sharing the normal client's event loop,
    they would slow its measurements down rather than the gateway's answers."""
    asyncio.run(abuse(plan, stop, results))


async def measure(args: argparse.Namespace, prepared: Prepared, gateway: GatewayProcess) -> None:
    process = psutil.Process(gateway.process.pid)
    phases = [Phase("baseline"), Phase("under abuse"), Phase("after")]
    current: list[Phase | None] = [phases[0]]
    samples: list[int] = []
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(process, samples, stop_sampling))
    normal = asyncio.create_task(
        normal_client(
            gateway.url, prepared.token, prepared.content_id, args.rate, lambda: current[0]
        )
    )

    def cpu() -> float:
        return float(sum(process.cpu_times()[:2]))

    cpu_marks = [cpu()]
    progress(f"baseline: the normal client alone for {args.baseline:g} s")
    await asyncio.sleep(args.baseline)
    rss_idle = process.memory_info().rss
    cpu_marks.append(cpu())

    plan = AbusePlan(
        args.abuse,
        gateway.url,
        gateway.ws_url,
        prepared.author_token,
        args.abusers,
        args.aliases,
        args.sockets,
        args.per_socket,
        args.cycles,
    )
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    abusing = context.Process(target=abuse_process, args=(plan, stop, results))
    progress(f"abuse ({args.abuse}) for {args.duration:g} s")
    current[0] = phases[1]
    abusing.start()
    await asyncio.sleep(args.duration)
    stop.set()
    sent, answers = await asyncio.to_thread(results.get)
    await asyncio.to_thread(abusing.join)
    cpu_marks.append(cpu())

    progress(f"after: the normal client alone for {args.settle:g} s")
    current[0] = phases[2]
    await asyncio.sleep(args.settle)
    current[0] = None
    cpu_marks.append(cpu())
    await normal
    stop_sampling.set()
    await sampler
    rss = {"idle": float(rss_idle), "peak": float(max(samples)), "end": float(samples[-1])}
    for phase, before, after in zip(phases, cpu_marks[:-1], cpu_marks[1:], strict=True):
        phase.cpu_seconds = after - before
    report(phases, Abusers(Counter(answers), sent), rss, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--abuse", choices=("search", "subscriptions", "both"), default="search")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--contents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rate", type=float, default=20.0, help="normal requests a second")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds before the abuse")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of abuse")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after the abuse")
    parser.add_argument("--abusers", type=int, default=4, help="search: abusive clients")
    parser.add_argument(
        "--aliases",
        type=int,
        default=20,
        help="search: fields per abusive request (20 as in the issue; 19 fit the cost limit)",
    )
    parser.add_argument("--sockets", type=int, default=10, help="subscriptions: sockets")
    parser.add_argument("--per-socket", type=int, default=100, help="subscriptions each")
    parser.add_argument("--cycles", type=int, default=5, help="archive/publish cycles")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
