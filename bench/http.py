"""Load benchmark: the gateway against a floor, over HTTP, at fixed concurrency.

    python -m bench.http                      # 100k users, 1M contents, 16 connections, 10 s
    python -m bench.http --duration 3 --operations contents,feed
    python -m bench.http --operations contents,feed --rounds 5 --no-count   # the feed/list ratio, 5 times

Starts the embedded Postgres in --data-dir (seeding the database only if it is empty,
as bench.feed does), the gateway as a real `gateway serve` process (one worker) and the
floor (bench/floor.py: bare Starlette, one hand-written SQL statement per request that
returns the JSON) as a uvicorn process, both on 127.0.0.1 against the same database.

1. Counting: a second pair of the same servers talks to Postgres through a counting
   proxy (bench/pgcount.py); a few sequential requests per operation give the
   statements per request as Postgres receives them.
2. Measuring, per operation: one request to each server, whose JSON must be equal (a
   diff and exit status 1 otherwise); then each server gets --warmup s of load and
   --duration s measured with --concurrency keep-alive connections (bench/load.py).
   CPU per request is read from /proc (psutil) for the server process, Postgres's
   backends and this load-generating process.
"""

import argparse
import asyncio
import dataclasses
import difflib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench import floor
from bench.common import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    Latency,
    database_name,
    prepare_database,
    progress,
    today_midnight_utc,
)
from bench.feed import prepare_viewer
from bench.load import LoadResult, Request, fetch, run_load
from bench.pgcount import StatementCounter
from db.embedded import EmbeddedPostgres, asyncpg_dsn
from db.seed import SeedPlan
from db.session import create_engine
from gateway.auth import Tokens
from tests.live_server import GatewayProcess, free_port, stop_process

SECRET = "bench-secret-not-for-production-0123456789"
COUNTED_REQUESTS = 8
# One client sends everything, so the per-viewer rate limit would throttle the benchmark
# itself; everything else is the gateway's default.
GATEWAY_SETTINGS: dict[str, Any] = {
    "GATEWAY_RATE_LIMIT_CAPACITY": "1e12",
    "GATEWAY_RATE_LIMIT_REFILL": "1e12",
}


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    label: str
    document: str
    variables: dict[str, Any]
    signed_in: bool
    # Whether the floor answers it too; the feed is measured against the contents list.
    floor: bool = True


FEED = """query Feed($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { node { id title publishedAt reactionCount viewerHasReacted author { id handle displayName } tags { id name } } }
    pageInfo { hasNextPage }
  }
}"""
FEED_WITH_CURSORS = """query FeedWalk($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor score reasons node { id title publishedAt reactionCount viewerHasReacted author { id handle displayName } tags { id name } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FEED_OPERATIONS = ("feed", "feed_walk", "feed_next")


def operations(handle: str, names: list[str]) -> list[Operation]:
    every = {
        "contents": Operation(
            "contents",
            "contents(first: 20), anonymous",
            floor.CONTENTS,
            {"first": 20},
            signed_in=False,
        ),
        "contents_member": Operation(
            "contents_member",
            "contents(first: 20), signed in",
            floor.CONTENTS,
            {"first": 20},
            signed_in=True,
            floor=False,
        ),
        "feed": Operation(
            "feed", "feed(first: 20), signed in", FEED, {"first": 20}, signed_in=True, floor=False
        ),
        "feed_walk": Operation(
            "feed_walk",
            "feed(first: 20) + cursors, score, reasons",
            FEED_WITH_CURSORS,
            {"first": 20},
            signed_in=True,
            floor=False,
        ),
        "feed_next": Operation(
            "feed_next",
            "feed(first: 20, after: page 1's end)",
            FEED_WITH_CURSORS,
            {"first": 20},
            signed_in=True,
            floor=False,
        ),
        "profile": Operation(
            "profile",
            f"user({handle}) + contents(first: 10), signed in",
            floor.PROFILE,
            {"handle": handle, "first": 10},
            signed_in=True,
        ),
    }
    unknown = set(names) - set(every)
    if unknown:
        raise SystemExit(f"unknown operations: {', '.join(sorted(unknown))}; know {list(every)}")
    return [every[name] for name in names]


# --- server processes ---------------------------------------------------------------


class Server:
    """A server under test: its base URL and the process whose CPU is counted."""

    name: str
    port: int
    pid: int

    def request(self, operation: Operation, token: str) -> Request:
        headers = {"Authorization": f"Bearer {token}"} if operation.signed_in else {}
        body = {"query": operation.document, "variables": operation.variables}
        return Request.post_json("127.0.0.1", self.port, "/graphql", body, headers)

    def stop(self) -> None:
        raise NotImplementedError


class Gateway(Server):
    def __init__(
        self, database_url: str, workdir: Path, tag: str, settings: dict[str, Any] | None = None
    ) -> None:
        self.name = "gateway"
        (workdir / tag).mkdir()
        self.process = GatewayProcess(
            database_url,
            SECRET,
            workdir / tag / "gateway.log",
            **GATEWAY_SETTINGS,
            **(settings or {}),
        )
        self.port = self.process.port
        self.pid = self.process.process.pid

    def wait_ready(self) -> None:
        self.process.wait_ready()

    def stop(self) -> None:
        self.process.stop()


class Floor(Server):
    def __init__(self, database_url: str, workdir: Path, tag: str) -> None:
        self.name = "floor"
        self.port = free_port()
        self.log_path = workdir / f"floor-{tag}.log"
        env = dict(os.environ)
        env |= {"FLOOR_DATABASE_URL": asyncpg_dsn(database_url), "FLOOR_SECRET_KEY": SECRET}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "bench.floor:create_app", "--factory",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--no-access-log", "--log-level", "warning",
                ],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"floor exited:\n{self.log_path.read_text()}")
            try:
                httpx.post(f"http://127.0.0.1:{self.port}/graphql", json={}, timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"floor not ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        stop_process(self.process)


async def with_walk(gateway: Server, operation: Operation, token: str) -> Operation:
    """feed_next reads page 2 of one walk, over and over: a first page starts it (walks
    last an hour)."""
    if operation.name != "feed_next":
        return operation
    first = await answer(gateway, Operation("", "", FEED_WITH_CURSORS, {"first": 20}, True), token)
    after = first["data"]["feed"]["pageInfo"]["endCursor"]
    return dataclasses.replace(operation, variables={"first": 20, "after": after})


async def start_pair(
    url: str, workdir: Path, tag: str, settings: dict[str, Any] | None = None
) -> tuple[Gateway, Floor]:
    gateway = Gateway(url, workdir, tag, settings)
    try:
        server_floor = Floor(url, workdir, tag)
    except BaseException:
        gateway.stop()
        raise
    try:
        await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(server_floor.wait_ready)
    except BaseException:
        gateway.stop()
        server_floor.stop()
        raise
    return gateway, server_floor


# --- CPU ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class PostgresCpu:
    """CPU of the whole Postgres server from /proc: the postmaster, its live children
    (backends, background workers) and the children it has reaped (cutime/cstime), so
    the CPU of connections opened and closed during a measurement is counted too."""

    def __init__(self, pgdata: Path) -> None:
        self.postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))

    def read(self) -> float:
        own = self.postmaster.cpu_times()
        total = float(own.user + own.system + own.children_user + own.children_system)
        for child in self.postmaster.children():
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue  # reaped meanwhile: a later reading finds it in children_*
            total += float(times.user + times.system)
        return total


async def sessions_opened(url: str) -> int:
    """Connections ever opened to the database (pg_stat_database.sessions)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


# --- comparing ------------------------------------------------------------------------


async def answer(server: Server, operation: Operation, token: str) -> Any:
    status, body = await fetch(server.request(operation, token))
    parsed = json.loads(body)
    if status != 200 or "errors" in parsed:
        raise SystemExit(f"{server.name} answered {operation.name} with HTTP {status}: {body!r}")
    return parsed


async def check_equal(gateway: Server, floor_: Server, operation: Operation, token: str) -> None:
    """The same JSON from both. The feed's order depends on the instant it was ranked
    (freshness), so a difference there gets one more try before it fails."""
    for attempt in (1, 2):
        ours, theirs = await asyncio.gather(
            answer(gateway, operation, token), answer(floor_, operation, token)
        )
        if ours == theirs:
            return
        if attempt == 2:
            left = json.dumps(ours, indent=1, sort_keys=True).splitlines()
            right = json.dumps(theirs, indent=1, sort_keys=True).splitlines()
            diff = difflib.unified_diff(left, right, "gateway", "floor", lineterm="", n=2)
            print("\n".join(list(diff)[:120]))
            raise SystemExit(f"{operation.name}: the gateway's JSON differs from the floor's")


# --- counting -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counted:
    """Statements seen in each request's window, and by kind in the quietest window:
    anything else the servers send meanwhile (the gateway's feed worker polling once a
    second) only ever adds to a window, so the fewest is the request's own."""

    total: list[int]
    kinds: list[Counter[str]]

    def summary(self) -> str:
        low, high = min(self.total), max(self.total)
        return str(low) if low == high else f"{low} (up to {high})"

    def breakdown(self) -> str:
        order = ("query", "control", "ping", "reset")
        quietest = self.kinds[self.total.index(min(self.total))]
        return " ".join(f"{k} {quietest[k]}" for k in order if quietest[k])


async def count_statements(
    url: str, workdir: Path, ops: list[Operation], token: str
) -> dict[tuple[str, str], Counted]:
    socket_dir = workdir / "count"
    socket_dir.mkdir()
    parsed = make_url(url)
    upstream = Path(parsed.query["host"]) / f".s.PGSQL.{parsed.port or 5432}"  # type: ignore[arg-type]
    counter = StatementCounter(upstream, socket_dir)
    await counter.start()
    counted_url = parsed.set(query={"host": str(socket_dir)}).render_as_string(hide_password=False)
    found: dict[tuple[str, str], Counted] = {}
    try:
        progress("counting statements: starting a gateway and a floor behind the counter")
        # Budgets per process here: the shared limiter settles with Postgres every 100 ms
        # while a client spends (statements of the process, not of a request).
        pair = await start_pair(
            counted_url, workdir, "counted", {"GATEWAY_RATE_LIMIT_SHARED": "false"}
        )
        try:
            for listed in ops:
                operation = await with_walk(pair[0], listed, token)
                for server in pair if operation.floor else pair[:1]:
                    await answer(server, operation, token)  # warm: prepared statements, caches
                    totals: list[int] = []
                    kinds: list[Counter[str]] = []
                    for _ in range(COUNTED_REQUESTS):
                        await asyncio.sleep(0.1)
                        before = counter.snapshot()
                        await answer(server, operation, token)
                        await asyncio.sleep(0.1)  # anything the server sends after answering
                        delta = counter.snapshot() - before
                        totals.append(sum(delta.values()))
                        kinds.append(delta)
                    found[(operation.name, server.name)] = Counted(totals, kinds)
                    progress(
                        f"  {operation.name} {server.name}: {found[(operation.name, server.name)].summary()}"
                        f" statements ({found[(operation.name, server.name)].breakdown()})"
                    )
        finally:
            for server in pair:
                server.stop()
    finally:
        await counter.stop()
    return found


# --- measuring ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    load: LoadResult
    server_cpu: float
    postgres_cpu: float
    sessions: int  # Postgres connections opened meanwhile


async def measure(
    server: Server,
    operation: Operation,
    token: str,
    pg: PostgresCpu,
    url: str,
    args: argparse.Namespace,
) -> Measured:
    marks: dict[str, Any] = {}

    def on_start() -> None:
        marks["server"] = cpu_seconds(server.pid)
        marks["postgres"] = pg.read()

    def report(line: str) -> None:
        progress(f"  {operation.name:<8} {server.name:<7} {line}")

    sessions_before = await sessions_opened(url)
    load = await run_load(
        server.request(operation, token),
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        on_start=on_start,
        progress=report,
    )
    server_cpu = cpu_seconds(server.pid) - marks["server"]
    postgres_cpu = pg.read() - marks["postgres"]
    # Minus the one this reading opens.
    sessions = await sessions_opened(url) - sessions_before - 1
    return Measured(load, server_cpu, postgres_cpu, sessions)


def _per_request_ms(seconds: float, load: LoadResult) -> str:
    return f"{seconds * 1000 / load.requests:.2f}" if load.requests else "-"


def print_report(
    ops: list[Operation],
    results: dict[tuple[str, str], Measured],
    counts: dict[tuple[str, str], Counted],
    args: argparse.Namespace,
) -> None:
    print(
        f"\n{args.concurrency} connections, {args.warmup:g} s warm-up, {args.duration:g} s"
        " measured per server and operation"
    )
    header = (
        f"{'operation':<44} {'server':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'errors':>6} {'stmts':>6} {'cpu ms/req':>10} {'pg ms/req':>9} {'load ms/req':>11}"
        f" {'new conns':>9}"
    )
    print(header)
    print("-" * len(header))
    for operation in ops:
        for name in ("gateway", "floor") if operation.floor else ("gateway",):
            m = results[(operation.name, name)]
            lat = Latency.of(m.load.latencies)
            counted = counts.get((operation.name, name))
            print(
                f"{operation.label:<44} {name:<8} {m.load.rate:>8.1f} {lat.p50:>8.1f}"
                f" {lat.p99:>8.1f} {m.load.errors:>6} {counted.summary() if counted else '-':>6}"
                f" {_per_request_ms(m.server_cpu, m.load):>10}"
                f" {_per_request_ms(m.postgres_cpu, m.load):>9}"
                f" {_per_request_ms(m.load.client_cpu, m.load):>11} {m.sessions:>9}"
            )
    print("\ngateway / floor")
    for operation in ops:
        if not operation.floor:
            continue
        ours = results[(operation.name, "gateway")].load
        theirs = results[(operation.name, "floor")].load
        ratio = ours.rate / theirs.rate if theirs.rate else float("nan")
        target = {"contents": " (goal >= 0.85)", "profile": " (goal >= 0.60)"}.get(
            operation.name, ""
        )
        print(f"  {operation.label:<44} throughput {ratio:.3f}{target}")
    listed = results.get(("contents", "gateway"))
    feeds = [o for o in ops if o.name in FEED_OPERATIONS]
    if listed is not None and feeds:
        print("\nthe feed / the anonymous contents list, both through the gateway")
        for operation in feeds:
            ratio = results[(operation.name, "gateway")].load.rate / listed.load.rate
            target = " (goal >= 0.50)" if operation.name == "feed" else ""
            print(f"  {operation.label:<44} throughput {ratio:.3f}{target}")
    print(
        "\nstatements per request by kind (counting phase, the quietest of each request's windows):"
    )
    for (op_name, name), counted in counts.items():
        print(f"  {op_name:<8} {name:<8} {counted.breakdown()}")
    for (op_name, name), m in results.items():
        if m.load.first_error:
            print(f"  {op_name} {name}: first error: {m.load.first_error}")


def print_notes(ops: list[Operation]) -> None:
    print(
        "\nnotes:\n"
        "  JSON equal (parsed) between gateway and floor before each measurement; left out"
        f" of the documents: {floor.LEFT_OUT}.\n"
        "  stmts: statements Postgres received per request (every simple Query and every"
        " Execute, through bench/pgcount.py), BEGIN/ROLLBACK and pool pings included.\n"
        "  cpu: the server process (utime + stime from /proc); pg: every Postgres backend;"
        " load: the load generator (this process). Per completed request.\n"
        "  new conns: Postgres sessions opened during the measured phase (pg_stat_database).\n"
        "  The gateway writes uvicorn's access log (log level info) as `gateway serve` does;"
        " the floor runs with --no-access-log. Its rate limit is raised (one client sends"
        f" everything): {' '.join(f'{k}={v}' for k, v in GATEWAY_SETTINGS.items())}."
    )
    for operation in ops:
        print(f"\n{operation.name}: {operation.label}, variables {json.dumps(operation.variables)}")
        print(operation.document)


# --- the run --------------------------------------------------------------------------


async def pick_profile_handle(engine: Any, viewer_id: int) -> str:
    """The followed author with the most content: a full first page and a real count."""
    async with engine.connect() as conn:
        handle: str = (
            await conn.execute(
                sa.text(
                    "SELECT u.handle FROM follows f JOIN users u ON u.id = f.followee_id"
                    " WHERE f.follower_id = :v ORDER BY (SELECT count(*) FROM contents c"
                    " WHERE c.author_id = u.id) DESC, u.id LIMIT 1"
                ),
                {"v": viewer_id},
            )
        ).scalar_one()
        return handle


async def run(args: argparse.Namespace) -> None:
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    server = EmbeddedPostgres(args.data_dir)
    try:
        progress(f"database {database_name(plan)} in {args.data_dir}")
        prepared = await prepare_database(server, plan)
        engine = create_engine(prepared.url)
        try:
            viewer = await prepare_viewer(engine)
            handle = await pick_profile_handle(engine, viewer.id)
            async with engine.begin() as conn:
                # Walks earlier runs stored (~3,500 a run) would be pruned an hour on,
                # in one DELETE in the middle of whatever is measured then.
                await conn.execute(sa.text("TRUNCATE feed_snapshots"))
                version = (
                    await conn.execute(
                        sa.text("SELECT token_version FROM users WHERE id = :v"), {"v": viewer.id}
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        token = Tokens(SECRET, timedelta(hours=4)).issue(viewer.id, version).token
        ops = operations(handle, args.operations.split(","))
        progress(
            f"viewer bench_viewer (id {viewer.id}): {viewer.followed_tags} followed tags,"
            f" {viewer.follows} follows; profile of @{handle}"
        )
        pg = PostgresCpu(Path(make_url(prepared.url).query["host"]))  # type: ignore[arg-type]
        with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
            workdir = Path(tmp)
            counts = (
                {} if args.no_count else await count_statements(prepared.url, workdir, ops, token)
            )
            progress("measuring: starting the gateway and the floor")
            gateway, server_floor = await start_pair(
                prepared.url, workdir, "measured", dict(args.gateway_setting)
            )
            rounds: list[dict[tuple[str, str], Measured]] = []
            try:
                for round_ in range(args.rounds or 1):
                    results: dict[tuple[str, str], Measured] = {}
                    for listed in ops:
                        operation = await with_walk(gateway, listed, token)
                        targets: tuple[Server, ...] = (gateway,)
                        if operation.floor and round_ == 0:
                            progress(f"{operation.name}: checking that both answer the same JSON")
                            await check_equal(gateway, server_floor, operation, token)
                        if operation.floor:
                            targets = (gateway, server_floor)
                        for target in targets:
                            results[(operation.name, target.name)] = await measure(
                                target, operation, token, pg, prepared.url, args
                            )
                    rounds.append(results)
            finally:
                gateway.stop()
                server_floor.stop()
    finally:
        server.stop()
    print(
        f"\nplan: {plan.users:,} users, {plan.contents:,} contents, seed {plan.seed};"
        f" {os.cpu_count()} CPUs"
    )
    print_report(ops, rounds[0], counts, args)
    if len(rounds) > 1:
        print_rounds(ops, rounds)
    print_notes(ops)


def print_rounds(ops: list[Operation], rounds: list[dict[tuple[str, str], Measured]]) -> None:
    """Each round's req/s, and the feed against the contents list in each and on average:
    the list moves by +-10 % between runs on this machine, and the ratio with it."""
    print(f"\n{len(rounds)} rounds (req/s, gateway)")
    names = [o.name for o in ops]
    print("  round " + " ".join(f"{n:>12}" for n in names) + "   feed/contents")
    ratios = []
    for number, results in enumerate(rounds, 1):
        rates = [results[(n, "gateway")].load.rate for n in names]
        ratio = float("nan")
        if ("feed", "gateway") in results and ("contents", "gateway") in results:
            ratio = (
                results[("feed", "gateway")].load.rate / results[("contents", "gateway")].load.rate
            )
            ratios.append(ratio)
        print(f"  {number:>5} " + " ".join(f"{r:>12.1f}" for r in rates) + f"   {ratio:.3f}")
    if ratios:
        mean = sum(ratios) / len(ratios)
        print(f"  feed / contents: mean {mean:.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")


# --overhead: what operating it costs (issue #14). Off: no metrics and no line per request
# (log level WARNING); on: what production runs, metrics and a JSON line per request.
OBSERVABILITY: dict[str, dict[str, Any]] = {
    "off": {"GATEWAY_METRICS": "false", "GATEWAY_LOG_LEVEL": "WARNING"},
    "on": {"GATEWAY_METRICS": "true", "GATEWAY_LOG_FORMAT": "json", "GATEWAY_LOG_LEVEL": "INFO"},
}


# One round of --overhead: each mode's load and its gateway's CPU seconds.
Pair = dict[str, tuple[LoadResult, float]]


async def run_overhead(args: argparse.Namespace) -> None:
    """contents(first: 20) req/s with metrics and JSON logs off and on.

    In turns (the default): one gateway at a time, in pairs whose order alternates
    (off/on, on/off, ...) so that drift (other work on the machine) falls on both alike;
    each pair's ratio is reported, and their median. With --together both gateways run
    side by side, each with --concurrency connections, and are measured over the same
    seconds: whatever else the machine does then slows both alike, and the two share
    the CPU, so the one that needs more of it a request serves fewer. On this shared
    machine a run in turns is now and then 20-40 % off for reasons of its own, more than
    the cost being measured; side by side, on one CPU they share, is the steadier ratio."""
    plan = SeedPlan(
        users=args.users, contents=args.contents, seed=args.seed, reference=today_midnight_utc()
    )
    server = EmbeddedPostgres(args.data_dir)
    (operation,) = operations("unused", ["contents"])
    try:
        prepared = await prepare_database(server, plan)
        with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
            measure = _side_by_side if args.together else _in_turns
            pairs = await measure(prepared.url, Path(tmp), operation, args)
    finally:
        server.stop()
    how = (
        f"side by side on CPU {SHARED_CPU}"
        if args.together
        else "in turns, alternating which goes first"
    )
    print(
        f"\nplan: {plan.users:,} users, {plan.contents:,} contents; {operation.label};"
        f" {args.concurrency} connections a gateway, {args.warmup:g} s warm-up,"
        f" {args.duration:g} s measured, {len(pairs)} rounds {how}"
    )
    print(
        f"{'round':>5} {'mode':<4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'cpu ms/req':>10}"
    )
    for number, pair in enumerate(pairs, 1):
        for mode, (load, cpu) in pair.items():
            lat = Latency.of(load.latencies)
            print(
                f"{number:>5} {mode:<4} {load.rate:>8.1f} {lat.p50:>8.2f} {lat.p99:>8.2f}"
                f" {load.errors:>6} {_per_request_ms(cpu, load):>10}"
            )
    off, on = (statistics.mean(pair[m][0].rate for pair in pairs) for m in ("off", "on"))
    print(f"mean: off {off:.1f} req/s, on {on:.1f} req/s: on is {100 * (1 - on / off):.1f} % lower")
    lower = sorted(100 * (1 - pair["on"][0].rate / pair["off"][0].rate) for pair in pairs)
    print(
        f"rounds: on lower by {', '.join(f'{p:.1f}' for p in lower)} %;"
        f" median {statistics.median(lower):.1f} %"
    )
    on_settings = OBSERVABILITY["off" if args.control else "on"]
    print(f"settings: off {OBSERVABILITY['off']}, on {on_settings}")


async def _measured(
    gateway: Gateway, operation: Operation, args: argparse.Namespace
) -> tuple[LoadResult, float]:
    """One load on `gateway`, and the CPU seconds its process spent while measured."""
    marks: dict[str, float] = {}

    def on_start() -> None:
        marks["cpu"] = cpu_seconds(gateway.pid)

    load = await run_load(
        gateway.request(operation, ""),
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        on_start=on_start,
    )
    return load, cpu_seconds(gateway.pid) - marks["cpu"]


async def _in_turns(
    url: str, workdir: Path, operation: Operation, args: argparse.Namespace
) -> list[Pair]:
    pairs: list[Pair] = []
    for round_ in range(args.rounds or 2):
        modes = list(OBSERVABILITY.items())
        pair: Pair = {}
        for mode, settings in modes if round_ % 2 == 0 else modes[::-1]:
            gateway = Gateway(url, workdir, f"{mode}-{round_}", settings)
            try:
                await asyncio.to_thread(gateway.wait_ready)
                await answer(gateway, operation, "")
                pair[mode] = await _measured(gateway, operation, args)
            finally:
                gateway.stop()
            progress(f"  round {round_ + 1} {mode:<3} {pair[mode][0].rate:8.1f} req/s")
        pairs.append({mode: pair[mode] for mode in OBSERVABILITY})
    return pairs


# Side by side, both gateways share this CPU, and the Linux scheduler gives each half of
# it; left free to move, one often had a core to itself while the other shared one with
# Postgres, and the ratio swung by 40 % from round to round.
SHARED_CPU = max(os.sched_getaffinity(0))


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process `pid` (sched_setaffinity moves one thread) onto `cpus`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


async def _side_by_side(
    url: str, workdir: Path, operation: Operation, args: argparse.Namespace
) -> list[Pair]:
    # --control: both off, to see what the method itself gives when nothing differs.
    observed = {mode: OBSERVABILITY["off" if args.control else mode] for mode in OBSERVABILITY}
    gateways = {mode: Gateway(url, workdir, mode, settings) for mode, settings in observed.items()}
    pairs: list[Pair] = []
    try:
        for gateway in gateways.values():
            await asyncio.to_thread(gateway.wait_ready)
            await answer(gateway, operation, "")
            _pin(gateway.pid, {SHARED_CPU})
        for round_ in range(args.rounds or 2):
            loads = await asyncio.gather(
                *(_measured(gateway, operation, args) for gateway in gateways.values())
            )
            pair = dict(zip(gateways, loads, strict=True))
            pairs.append(pair)
            progress(
                f"  round {round_ + 1}: off {pair['off'][0].rate:8.1f},"
                f" on {pair['on'][0].rate:8.1f} req/s"
            )
    finally:
        for gateway in gateways.values():
            gateway.stop()
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--contents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted seconds per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument(
        "--operations",
        default="contents,feed,feed_walk,feed_next,profile",
        help="comma-separated, in this order",
    )
    parser.add_argument("--no-count", action="store_true", help="skip the statement-counting phase")
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="instead: contents req/s with metrics and JSON logs off vs on",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="--overhead: both gateways side by side, measured over the same seconds",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="--overhead --together: both gateways off (the method's own bias)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="times every operation is measured (1); --overhead: off/on pairs (2)",
    )
    parser.add_argument(
        "--gateway-setting",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="a setting for the measured gateway (repeatable), e.g. GATEWAY_DB_POOL_SIZE=5",
    )
    args = parser.parse_args(argv)
    if (args.control or args.together) and not args.overhead:
        parser.error("--together and --control go with --overhead")
    if args.control and not args.together:
        parser.error("--control compares two gateways side by side: add --together")
    asyncio.run(run_overhead(args) if args.overhead else run(args))


if __name__ == "__main__":
    main()
