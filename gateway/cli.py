"""The `gateway` command: serve, migrate, seed, schema, create-admin, worker,
send-digests, outbox."""

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.settings import Settings, load_or_create_secret

if TYPE_CHECKING:
    from db.session import Database
    from gateway.worker import DeliveryWorker

log = logging.getLogger("gateway")

EMBEDDED_DATABASE = "gateway"
DEMO_USERS = 200
DEMO_CONTENTS = 2000


def _embedded_url(settings: Settings) -> str:
    """Starts (or joins) the embedded server for this process's lifetime."""
    from db.embedded import EmbeddedPostgres, ensure_database

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
    if report.demo_logins:
        print("demo logins (handle / password):", file=sys.stderr)
        for login in report.demo_logins:
            print(f"  {login.handle} / {login.password}", file=sys.stderr)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


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
                )
            )
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
    if not settings.smtp_url:
        print(
            f"email: written to {settings.data_dir / 'mail'} (no GATEWAY_SMTP_URL)", file=sys.stderr
        )
    print(f"GraphiQL: http://{host}:{port}/graphql", file=sys.stderr)
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
        log_level="info",
        proxy_headers=True,
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


def schema_command(args: argparse.Namespace) -> None:
    from schema import schema

    sys.stdout.write(schema.as_str() + "\n")


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


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
