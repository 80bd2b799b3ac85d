"""`gateway doctor`: checks what a deployment needs before it takes traffic, and says
what is wrong in plain words.

Each check gives a Finding: ok, a warning (works, but not as an operator would want) or
a problem (the gateway will fail or misbehave). Problems make the command exit 1.
"""

import contextlib
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from db import migrate
from db.embedded import asyncpg_dsn
from db.read_pool import Planning, pool_size
from db.replicas import replica_lag_seconds
from gateway.mailer import MailError, connect, parse_smtp_url
from gateway.settings import Settings

# Past this share of the server's connections, a warning: other clients (psql,
# migrations, backups, monitoring) need some too.
BUDGET_WARNING_SHARE = 0.8

# At most this long for each SMTP command: an operator waits on the answer, and a server
# this slow to greet would hold every send up as long.
SMTP_CHECK_SECONDS = 5.0


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "PROBLEM"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.level.value:<8} {self.check}: {self.detail}"


def where(url: str) -> str:
    """host:port/database as user, never the password."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    return (
        f"{host}:{parsed.port or 5432}/{parsed.database} as {parsed.username or 'the default user'}"
    )


def settings_findings(settings: Settings) -> list[Finding]:
    found = [
        Finding(
            Level.OK,
            "settings",
            f"{settings.env.value}, database from "
            + ("DATABASE_URL" if settings.database_url else "the embedded server"),
        )
    ]
    if settings.production and not (settings.metrics_token or settings.metrics_address):
        found.append(
            Finding(
                Level.WARNING,
                "metrics",
                "production serves no /metrics until GATEWAY_METRICS_TOKEN or "
                "GATEWAY_METRICS_ADDRESS is set",
            )
        )
    return found


async def _connect(url: str, seconds: float) -> Any:
    return await asyncpg.connect(asyncpg_dsn(url), timeout=seconds)


def listeners(settings: Settings) -> int:
    """LISTEN connections a process keeps: the event bus's, and the delivery worker's."""
    return 1 + (1 if settings.worker else 0)


def reads(size: int) -> int:
    """The read pools' connections (db/read_pool.py: one pool per kind of planning)."""
    return sum(pool_size(size, planning) for planning in Planning)


def per_process(size: int, listening: int) -> int:
    """What one gateway process may hold open to the primary with GATEWAY_DB_POOL_SIZE
    `size`: the session pool and its overflow (2 x size), the read pools and its LISTEN
    connections."""
    return 2 * size + reads(size) + listening


def connection_budget(
    settings: Settings, *, processes: int, max_connections: int, reserved: int
) -> Finding:
    size, listening = settings.db_pool_size, listeners(settings)
    each = per_process(size, listening)
    needed = processes * each
    available = max_connections - reserved
    detail = (
        f"{processes} gateway process(es) x {each} connections "
        f"(GATEWAY_DB_POOL_SIZE {size}: 2 x {size} sessions, {reads(size)} reads, "
        f"{listening} listening) = {needed}, the "
        f"server takes {available} (max_connections {max_connections} less {reserved} "
        "reserved)"
    )
    if needed > available:
        fitting = next(
            (s for s in range(size, 0, -1) if processes * per_process(s, listening) <= available),
            0,
        )
        return Finding(
            Level.PROBLEM,
            "connection budget",
            f"{detail}: under load connections will be refused; set GATEWAY_DB_POOL_SIZE "
            f"to {fitting} or less, run fewer workers, or raise max_connections",
        )
    if needed > available * BUDGET_WARNING_SHARE:
        return Finding(
            Level.WARNING,
            "connection budget",
            f"{detail}: little is left for psql, migrations and monitoring",
        )
    return Finding(Level.OK, "connection budget", detail)


async def database_findings(settings: Settings, *, processes: int) -> list[Finding]:
    url = settings.database_url or ""
    try:
        conn = await _connect(url, settings.db_connect_timeout)
    except Exception as error:
        reason = str(error) or type(error).__name__
        return [
            Finding(
                Level.PROBLEM,
                "database",
                f"cannot connect to {where(url)}: {reason}. Check DATABASE_URL (host, port, "
                "database, user, password) and that the server accepts connections from here",
            )
        ]
    found: list[Finding] = []
    try:
        version = await conn.fetchval("SHOW server_version")
        found.append(
            Finding(Level.OK, "database", f"reachable at {where(url)} (PostgreSQL {version})")
        )
        found.append(await _migrations(conn))
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
        if await conn.fetchval("SELECT 1 FROM pg_settings WHERE name = 'reserved_connections'"):
            reserved += int(await conn.fetchval("SHOW reserved_connections"))
        found.append(
            connection_budget(
                settings, processes=processes, max_connections=max_connections, reserved=reserved
            )
        )
    finally:
        await conn.close()
    return found


async def _migrations(conn: Any) -> Finding:
    head = migrate.head_revision()
    current = None
    if await conn.fetchval("SELECT to_regclass('alembic_version')") is not None:
        current = await conn.fetchval("SELECT version_num FROM alembic_version")
    if current == head:
        return Finding(Level.OK, "migrations", f"at the newest, {head}")
    have = f"at migration {current}" if current else "not migrated at all"
    return Finding(
        Level.PROBLEM,
        "migrations",
        f"the database is {have}, this gateway needs {head}: run `gateway migrate`",
    )


async def replica_findings(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    for url in settings.replica_urls:
        try:
            conn = await _connect(url, settings.db_connect_timeout)
        except Exception as error:
            found.append(
                Finding(
                    Level.PROBLEM,
                    "read replica",
                    f"cannot connect to {where(url)}: {error}. Reads go to the primary "
                    "until it answers",
                )
            )
            continue
        try:
            if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                found.append(
                    Finding(
                        Level.PROBLEM,
                        "read replica",
                        f"{where(url)} is not a standby (pg_is_in_recovery() is false): "
                        "DATABASE_REPLICA_URLS must name streaming replicas of the primary",
                    )
                )
                continue
            lag = await replica_lag_seconds(conn)
        finally:
            await conn.close()
        if lag > settings.replica_max_lag:
            found.append(
                Finding(
                    Level.PROBLEM,
                    "read replica",
                    f"{where(url)} is {lag:.1f} s behind the primary, more than "
                    f"GATEWAY_REPLICA_MAX_LAG ({settings.replica_max_lag:g} s): reads skip it",
                )
            )
        else:
            found.append(Finding(Level.OK, "read replica", f"{where(url)}, {lag:.1f} s behind"))
    return found


async def email_findings(settings: Settings) -> list[Finding]:
    if not settings.smtp_url:
        folder = settings.data_dir / "mail"
        if settings.production:
            return [
                Finding(
                    Level.WARNING,
                    "email",
                    f"off: no GATEWAY_SMTP_URL, so messages are only written to {folder} "
                    "and nobody receives them (docs/email.md)",
                )
            ]
        return [Finding(Level.OK, "email", f"off: no GATEWAY_SMTP_URL, .eml files in {folder}")]
    config = parse_smtp_url(settings.smtp_url)
    config = replace(config, timeout=min(config.timeout, SMTP_CHECK_SECONDS))
    try:
        smtp = await connect(config)
    except MailError as error:
        return [Finding(Level.PROBLEM, "email", f"{error}: no email will be sent")]
    try:
        # Without STARTTLS or a login nothing has greeted the server yet.
        if smtp.last_ehlo_response is None:
            await smtp.ehlo()
        secure = smtp.get_transport_info("sslcontext") is not None
    except Exception as error:
        return [
            Finding(
                Level.PROBLEM,
                "email",
                f"the SMTP server {config.host}:{config.port} did not answer EHLO: {error}",
            )
        ]
    finally:
        with contextlib.suppress(Exception):
            await smtp.quit()
    how = ["TLS" if secure else "no TLS"]
    if config.username:
        how.append(f"signed in as {config.username}")
    return [Finding(Level.OK, "email", f"SMTP at {config.host}:{config.port} ({', '.join(how)})")]


async def diagnose(settings: Settings, *, processes: int) -> list[Finding]:
    found = settings_findings(settings)
    found += await database_findings(settings, processes=processes)
    found += await replica_findings(settings)
    found += await email_findings(settings)
    return found
