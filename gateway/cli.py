"""The `gateway` command: serve, migrate, seed, schema, create-admin, doctor,
rebuild-feeds, worker, send-digests, outbox."""

import argparse
import asyncio
import atexit
import getpass
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.logs import logging_config
from gateway.settings import LogFormat, Settings, load_or_create_secret

if TYPE_CHECKING:
    from db.session import Database
    from gateway.worker import DeliveryWorker

log = logging.getLogger("gateway")

EMBEDDED_DATABASE = "gateway"
DEMO_USERS = 200
DEMO_CONTENTS = 2000


# pgserver's account of starting the embedded server (initdb, pg_ctl), in the data
# folder rather than on the terminal; Postgres's own log is postgres/log beside it.
PGSERVER_LOG = "pgserver.log"


def _embedded_url(settings: Settings) -> str:
    """Starts (or joins) the embedded server for this process's lifetime."""
    from db.embedded import EmbeddedPostgres, ensure_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(settings.data_dir / PGSERVER_LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    pgserver_log = logging.getLogger("pgserver")
    pgserver_log.addHandler(handler)
    pgserver_log.setLevel(logging.INFO)
    pgserver_log.propagate = False
    server = EmbeddedPostgres(settings.data_dir)
    asyncio.run(ensure_database(server.url("postgres"), EMBEDDED_DATABASE))
    return server.url(EMBEDDED_DATABASE)


def _resolve(settings: Settings) -> tuple[Settings, bool]:
    """Settings with a database URL and a secret; True when the database is embedded."""
    embedded = not settings.database_url
    if embedded:
        settings = settings.with_database(_embedded_url(settings))
    if not settings.secret_key:
        settings = settings.with_secret(load_or_create_secret(settings.data_dir))
    return settings, embedded


async def _migrate(url: str) -> None:
    from db import migrate
    from db.session import create_engine

    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def _seed(
    url: str,
    users: int,
    contents: int,
    seed: int,
    *,
    only_if_empty: bool,
    as_of: datetime | None = None,
    print_logins: bool = True,
) -> None:
    from db.seed import REFERENCE_TIME, SeedPlan, is_empty, seed_database
    from gateway.progress import ProgressBar

    if only_if_empty and not await is_empty(url):
        return
    plan = SeedPlan(users=users, contents=contents, seed=seed, reference=as_of or REFERENCE_TIME)
    report = await seed_database(url, plan, progress=ProgressBar())
    print(
        f"seeded {report.users:,} users, {report.contents:,} contents, {report.tags:,} tags, "
        f"{report.follows:,} follows, {report.reactions:,} reactions",
        file=sys.stderr,
    )
    if report.demo_logins and print_logins:
        print("demo logins (handle / password):", file=sys.stderr)
        for login in report.demo_logins:
            print(f"  {login.handle} / {login.password}", file=sys.stderr)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _metrics_folder() -> None:
    """PROMETHEUS_MULTIPROC_DIR for this run's workers: the one given (emptied: samples
    of an earlier run would be added to this one's), or a new folder removed at exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return
    folder = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _metrics_listener(address: tuple[str, int]) -> None:
    """/metrics on a port of its own, served by this (the supervising) process from the
    workers' shared samples."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(address[1], addr=address[0], registry=registry)


def _banner(settings: Settings, url: str, embedded: bool) -> None:
    """What a person starting the server needs: where it is, how to sign in, where the
    logs go."""
    from db.seed.population import DEMO_USERS
    from db.seed.words import DEMO_PASSWORD

    metrics = None
    if (listener := settings.metrics_listener()) is not None:
        metrics = f"http://{listener[0]}:{listener[1]}/metrics"
    elif settings.metrics_on_public_port:
        metrics = f"{url.removesuffix('/graphql')}/metrics" + (
            " (bearer token: GATEWAY_METRICS_TOKEN)" if settings.metrics_token else ""
        )
    email = (
        "GATEWAY_SMTP_URL"
        if settings.smtp_url
        else (f".eml files in {settings.data_dir / 'mail'} (no GATEWAY_SMTP_URL)")
    )
    lines = {"url": url, "metrics": metrics or "off", "email": email}
    if embedded:
        pgdata = (settings.data_dir / "postgres").resolve()
        started = (settings.data_dir / PGSERVER_LOG).resolve()
        lines["database"] = (
            f"embedded PostgreSQL in {pgdata} (its log: {pgdata / 'log'}; starting it: {started})"
        )
        if settings.seed_demo:
            handles = ", ".join(handle for handle, _, _ in DEMO_USERS)
            lines["demo logins"] = f"{handles} (password {DEMO_PASSWORD})"
    else:
        lines["database"] = "DATABASE_URL"
    if settings.effective_log_format is LogFormat.JSON:
        log.info("serving", extra={"fields": lines})
        return
    print(f"\nGraphQL and GraphiQL: {url}", file=sys.stderr)
    for name, value in lines.items():
        if name != "url":
            print(f"  {name}: {value}", file=sys.stderr)
    print(
        "  logs: this terminal, one line per request (GATEWAY_LOG_FORMAT=json for JSON)\n",
        file=sys.stderr,
    )


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings, embedded = _resolve(Settings())
    if embedded:
        # The embedded database is ours to keep current; a shared server is migrated on
        # purpose with `gateway migrate`.
        asyncio.run(_migrate(settings.database_url or ""))
        if settings.seed_demo:
            # Dated up to today, so the demo feed has fresh content to rank.
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            asyncio.run(
                _seed(
                    settings.database_url or "",
                    DEMO_USERS,
                    DEMO_CONTENTS,
                    42,
                    only_if_empty=True,
                    as_of=today,
                    print_logins=False,
                )
            )
    trusted_proxies = settings.trusted_proxy_list()
    host = args.host or settings.host
    port = args.port or settings.port
    # Workers and the reloader build the app from the environment in their own process.
    os.environ["DATABASE_URL"] = settings.database_url or ""
    os.environ["GATEWAY_SECRET_KEY"] = settings.secret_key or ""
    if not settings.public_url:
        # Links in emails lead back to this server unless a public URL is configured.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        os.environ["GATEWAY_PUBLIC_URL"] = f"http://{shown}:{port}"
        if settings.production:
            log.warning("GATEWAY_PUBLIC_URL is not set: email links will point at %s", shown)
    if settings.metrics:
        _metrics_folder()
        if (listener := settings.metrics_listener()) is not None:
            _metrics_listener(listener)
    _banner(settings, f"http://{host}:{port}/graphql", embedded)
    # uvicorn raises the signal that stopped it again once it has shut down. SIGTERM's
    # default action (what Docker and systemd send) would end the process on the spot,
    # skipping atexit and with it pgserver's stop of the embedded server, which then
    # outlives the gateway: leave through Python instead, as SIGINT does.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        reload=args.reload,
        reload_dirs=[str(Path(__file__).resolve().parent.parent)] if args.reload else None,
        # Slow headers and connections per address (gateway/connections.py).
        http="gateway.connections:GuardedHttpProtocol",
        ws="gateway.connections:GuardedWebSocketProtocol",
        # X-Forwarded-For only from the proxies named: from anyone else it would let a
        # client pose as any address and escape the per-address limits.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies or None,
        # WebSocket messages are held to the same limit as HTTP bodies.
        ws_max_size=settings.max_body_bytes,
        # Nothing to tell a client about which server software it is talking to.
        server_header=False,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.effective_log_format, settings.log_level.upper()),
        # One line per request comes from the gateway itself (gateway/observe.py).
        access_log=False,
        # Requests in flight get this long on shutdown; live sockets are closed with 1001
        # before it starts (gateway/shutdown.py).
        timeout_graceful_shutdown=10,
        # No permessage-deflate: live payloads are a few hundred bytes, and a compressor
        # per socket cost ~40 KB of memory and ~12 us of CPU per delivery at 10,000
        # subscribers (docs/performance.md, "Live updates").
        ws_per_message_deflate=False,
    )


def migrate_command(args: argparse.Namespace) -> None:
    settings, _ = _resolve(Settings())
    asyncio.run(_migrate(settings.database_url or ""))
    print("database migrated to the newest revision", file=sys.stderr)


def seed_command(args: argparse.Namespace) -> None:
    settings, _ = _resolve(Settings())
    asyncio.run(_migrate(settings.database_url or ""))
    asyncio.run(
        _seed(
            settings.database_url or "",
            args.users,
            args.contents,
            args.seed,
            only_if_empty=False,
            as_of=args.as_of,
        )
    )


async def _create_admin(url: str, handle: str, email: str, password: str) -> str:
    from db.errors import UniqueViolation
    from db.session import Database, create_engine
    from db.writes.accounts import insert_user
    from gateway.auth import Passwords

    database = Database(create_engine(url))
    try:
        password_hash = await Passwords().hash(password)
        async with database.session() as session:
            user = await insert_user(
                session,
                handle=handle,
                email=email,
                password_hash=password_hash,
                display_name=handle,
                role="ADMIN",
            )
            await session.commit()
        return user.handle
    except UniqueViolation as error:
        taken = "email" if error.constraint and "email" in error.constraint else "handle"
        raise SystemExit(f"error: that {taken} is already registered") from None
    finally:
        await database.dispose()


def create_admin_command(args: argparse.Namespace) -> None:
    from resolvers import validation
    from resolvers.errors import BadUserInput

    password = os.environ.get("GATEWAY_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise SystemExit("error: set GATEWAY_ADMIN_PASSWORD, or run in a terminal to be asked")
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("error: the passwords differ")
    try:
        handle = validation.handle(args.handle)
        email = validation.email(args.email)
        validation.password(password, handle=handle)
    except BadUserInput as error:
        raise SystemExit(f"error: {error.message}") from None
    settings, _ = _resolve(Settings())
    asyncio.run(_migrate(settings.database_url or ""))
    created = asyncio.run(_create_admin(settings.database_url or "", handle, email, password))
    print(f"created admin @{created}", file=sys.stderr)


def _worker_from_settings(settings: Settings) -> tuple["Database", "DeliveryWorker"]:
    from db.session import Database, create_engine
    from gateway.app import delivery_worker

    database = Database(create_engine(settings.database_url or "", pool_size=4))
    outreach = settings.outreach(settings.secret_key or "")
    return database, delivery_worker(settings, database, outreach)


def worker_command(args: argparse.Namespace) -> None:
    """Deliveries and digests without serving HTTP; stops on SIGINT or SIGTERM, handing
    back what it had claimed but not sent."""
    settings, embedded = _resolve(Settings())
    if embedded:
        asyncio.run(_migrate(settings.database_url or ""))

    async def run() -> None:
        database, worker = _worker_from_settings(settings)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await worker.run()
        except asyncio.CancelledError:
            pass
        finally:
            await database.dispose()

    asyncio.run(run())


def send_digests_command(args: argparse.Namespace) -> None:
    settings, _ = _resolve(Settings())
    asyncio.run(_migrate(settings.database_url or ""))

    async def run() -> tuple[int, int]:
        database, worker = _worker_from_settings(settings)
        try:
            queued = await worker.queue_digests(everyone=args.all)
            return queued, await worker.drain()
        finally:
            await worker.webhooks.close()
            await database.dispose()

    queued, handled = asyncio.run(run())
    print(f"{queued} digests with something new; {handled} messages handled", file=sys.stderr)


def outbox_command(args: argparse.Namespace) -> None:
    from db import outbox
    from db.session import Database, create_engine

    settings, _ = _resolve(Settings())

    async def run() -> dict[tuple[str, str], int]:
        database = Database(create_engine(settings.database_url or "", pool_size=1))
        try:
            async with database.session() as session:
                if args.requeue_dead:
                    count = await outbox.requeue_dead(session)
                    await session.commit()
                    print(f"{count} dead letters queued again", file=sys.stderr)
                return await outbox.counts(session)
        finally:
            await database.dispose()

    for (channel, status), count in sorted(asyncio.run(run()).items()):
        print(f"{channel.lower():8} {status.lower():8} {count}")


def doctor_command(args: argparse.Namespace) -> None:
    """Checks settings, the database, migrations, the connection budget and replicas;
    prints a line per check and exits 1 when any found a problem."""
    from pydantic import ValidationError

    from gateway.doctor import Finding, Level, diagnose

    try:
        settings = Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            # The message only: the value may be a secret or a URL with a password.
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(Finding(Level.PROBLEM, where, message).line())
        raise SystemExit(1) from None
    if not settings.database_url:
        if settings.production:
            print(
                Finding(
                    Level.PROBLEM,
                    "database",
                    "DATABASE_URL is not set: in production the gateway needs a Postgres of "
                    "its own (the embedded one is for development)",
                ).line()
            )
            raise SystemExit(1)
        settings, _ = _resolve(settings)
    findings = asyncio.run(diagnose(settings, processes=args.workers * args.instances))
    for finding in findings:
        print(finding.line())
    problems = sum(finding.level is Level.PROBLEM for finding in findings)
    if problems:
        print(f"\n{problems} problem(s) found", file=sys.stderr)
        raise SystemExit(1)


async def _rebuild_feeds(
    settings: Settings, handles: list[str], everyone: bool, concurrency: int
) -> int:
    import sqlalchemy as sa

    from db.feed.rebuild import rebuild_all, viewers
    from db.reads.fields import USERS
    from db.session import Database, create_engine
    from gateway.progress import ProgressBar

    db = Database(create_engine(settings.database_url or "", pool_size=concurrency))
    try:
        if handles:
            async with db.session() as session:
                found = await (await session.connection()).execute(
                    sa.select(USERS.c.handle, USERS.c.id).where(USERS.c.handle.in_(handles))
                )
                ids: dict[str, int] = dict(found.tuples().all())
            missing = sorted(set(handles) - set(ids))
            if missing:
                raise SystemExit(f"error: no user @{missing[0]}")
            chosen = [ids[h] for h in handles]
        else:
            chosen = await viewers(db, stored_only=not everyone)
        bar = ProgressBar()
        kept = await rebuild_all(
            db, chosen, settings.ranking.weights(), concurrency=concurrency, progress=bar
        )
        bar.close()
        return kept
    finally:
        await db.dispose()


def rebuild_feeds_command(args: argparse.Namespace) -> None:
    if not args.viewer and not args.all and not args.stored:
        raise SystemExit("error: name viewers with --viewer, or choose --stored or --all")
    settings, _ = _resolve(Settings())
    handles = [h.strip().lstrip("@").lower() for h in args.viewer or []]
    kept = asyncio.run(_rebuild_feeds(settings, handles, args.all, args.concurrency))
    print(f"rebuilt feeds keep {kept:,} candidates in all", file=sys.stderr)


def schema_command(args: argparse.Namespace) -> None:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


def _date(value: str) -> datetime:
    if value == "today":
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not YYYY-MM-DD or 'today'") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="serve GraphQL and GraphiQL over HTTP")
    serve_parser.add_argument("--host", help="default: GATEWAY_HOST or 127.0.0.1")
    serve_parser.add_argument("--port", type=int, help="default: GATEWAY_PORT or 8000")
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.add_argument("--reload", action="store_true", help="restart on code changes")
    serve_parser.set_defaults(run=serve)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        run=migrate_command
    )

    seed_parser = commands.add_parser("seed", help="add generated demo data (COPY, fast)")
    seed_parser.add_argument("--users", type=int, default=DEMO_USERS)
    seed_parser.add_argument("--contents", type=int, default=DEMO_CONTENTS)
    seed_parser.add_argument("--seed", type=int, default=42, help="same seed, same data")
    seed_parser.add_argument(
        "--as-of",
        type=_date,
        help="date (YYYY-MM-DD or 'today') the data ends at; default 2026-01-01, so the same "
        "--seed writes the same rows on any day",
    )
    seed_parser.set_defaults(run=seed_command)

    commands.add_parser("schema", help="print the GraphQL SDL").set_defaults(run=schema_command)

    feeds_parser = commands.add_parser(
        "rebuild-feeds",
        help="rebuild stored feeds now (docs/ranking.md): after changing GATEWAY_RANK_*, or "
        "to build every user's ahead of their first visit",
    )
    feeds_parser.add_argument("--viewer", action="append", help="a handle; repeat for more")
    feeds_parser.add_argument(
        "--stored", action="store_true", help="every viewer who has a stored feed"
    )
    feeds_parser.add_argument(
        "--all",
        action="store_true",
        help="every user (each counts as active for GATEWAY_RANK_INACTIVE_DAYS from now)",
    )
    feeds_parser.add_argument("--concurrency", type=int, default=2)
    feeds_parser.set_defaults(run=rebuild_feeds_command)

    doctor_parser = commands.add_parser(
        "doctor",
        help="check settings, database, migrations, connection budget and replicas",
    )
    doctor_parser.add_argument(
        "--workers", type=int, default=1, help="workers each `gateway serve` runs (default 1)"
    )
    doctor_parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="gateway servers sharing this database, e.g. behind a load balancer (default 1)",
    )
    doctor_parser.set_defaults(run=doctor_command)

    admin_parser = commands.add_parser(
        "create-admin",
        help="create an ADMIN account (password asked, or from GATEWAY_ADMIN_PASSWORD)",
    )
    admin_parser.add_argument("--handle", required=True)
    admin_parser.add_argument("--email", required=True)
    admin_parser.set_defaults(run=create_admin_command)

    commands.add_parser(
        "worker", help="send queued email and webhook deliveries, and digests when due"
    ).set_defaults(run=worker_command)
    digests_parser = commands.add_parser("send-digests", help="send the digests due now")
    digests_parser.add_argument(
        "--all", action="store_true", help="every enabled digest, whatever its schedule"
    )
    digests_parser.set_defaults(run=send_digests_command)
    outbox_parser = commands.add_parser("outbox", help="count queued, sent and dead deliveries")
    outbox_parser.add_argument(
        "--requeue-dead", action="store_true", help="give dead letters a new set of attempts"
    )
    outbox_parser.set_defaults(run=outbox_command)
    return parser


def _configure_logging() -> None:
    """As the settings say; with settings that do not load (the command reports that
    itself), plain text."""
    try:
        settings = Settings()
        config = logging_config(settings.effective_log_format, settings.log_level.upper())
    except Exception:
        config = logging_config(LogFormat.TEXT)
    logging.config.dictConfig(config)


def main(argv: Sequence[str] | None = None) -> None:
    _configure_logging()
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
