"""`gateway doctor` as an operator runs it: it names what is wrong in plain words and
exits non-zero, and says ok when all is well."""

import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from db.embedded import asyncpg_dsn, drop_database, ensure_database
from tests.conftest import TEST_SECRET, _with_database
from tests.live_server import free_port
from tests.mail_server import MailServer

ROOT = Path(__file__).resolve().parent.parent


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "GATEWAY_"))}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "doctor", *args],
        cwd=ROOT,
        env=base | {"GATEWAY_SECRET_KEY": TEST_SECRET} | env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def max_connections(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


def test_a_healthy_setup_is_all_ok(fresh_database_url) -> None:
    result = doctor(DATABASE_URL=fresh_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for check in ("settings", "database", "migrations", "connection budget"):
        assert any(line.startswith("ok") and f" {check}:" in line for line in lines), (check, lines)
    assert any(line.startswith("ok       email: off: no GATEWAY_SMTP_URL") for line in lines), lines


def test_a_wrong_database_url_is_reported_without_its_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://gateway:hunter2secret@127.0.0.1:{port}/gateway"
    result = doctor(DATABASE_URL=url, GATEWAY_DB_CONNECT_TIMEOUT="2")
    assert result.returncode == 1
    assert (
        f"PROBLEM  database: cannot connect to 127.0.0.1:{port}/gateway as gateway" in result.stdout
    )
    assert "Check DATABASE_URL" in result.stdout
    assert "hunter2secret" not in result.stdout + result.stderr


async def test_a_missing_migration_is_reported(server_url) -> None:
    name = f"doctor_unmigrated_{os.getpid()}"
    await ensure_database(server_url, name)
    try:
        result = doctor(DATABASE_URL=_with_database(server_url, name))
    finally:
        await drop_database(server_url, name)
    assert result.returncode == 1
    assert "PROBLEM  migrations: the database is not migrated at all" in result.stdout
    assert "run `gateway migrate`" in result.stdout


async def test_an_over_budget_pool_is_reported_with_what_would_fit(fresh_database_url) -> None:
    limit = await max_connections(fresh_database_url)
    result = doctor(
        "--workers", "4", DATABASE_URL=fresh_database_url, GATEWAY_DB_POOL_SIZE=str(limit)
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if "connection budget" in line]
    assert line.startswith("PROBLEM")
    # Sessions and overflow, the three read pools (searches and feed first pages half
    # size each), the event bus's and the delivery worker's LISTEN connections.
    each = 2 * limit + limit + 2 * max(2, limit // 2) + 2
    assert f"4 gateway process(es) x {each} connections" in line
    assert "set GATEWAY_DB_POOL_SIZE to" in line


def test_bad_settings_are_reported_in_plain_words() -> None:
    result = doctor(GATEWAY_ENV="production", GATEWAY_SECRET_KEY="change-me")
    assert result.returncode == 1
    assert "GATEWAY_SECRET_KEY must be set to a real secret" in result.stdout
    assert "change-me" not in result.stdout


def test_production_without_a_database_url_is_a_problem() -> None:
    result = doctor(GATEWAY_ENV="production", GATEWAY_SECRET_KEY=TEST_SECRET)
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stdout


def test_a_reachable_smtp_server_is_ok(fresh_database_url) -> None:
    server = MailServer(login=("mailer", "s3cret")).start()
    try:
        url = f"smtp://mailer:s3cret@127.0.0.1:{server.port}?starttls=off"
        result = doctor(DATABASE_URL=fresh_database_url, GATEWAY_SMTP_URL=url)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    line = f"ok       email: SMTP at 127.0.0.1:{server.port} (no TLS, signed in as mailer)"
    assert line in result.stdout.splitlines()
    assert server.messages == []  # checking sends nothing


def test_an_smtp_port_nobody_listens_on_is_a_problem(fresh_database_url) -> None:
    port = free_port()
    result = doctor(
        DATABASE_URL=fresh_database_url, GATEWAY_SMTP_URL=f"smtp://mailer:hunter2@127.0.0.1:{port}"
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if " email:" in line]
    assert line.startswith(f"PROBLEM  email: cannot reach the SMTP server 127.0.0.1:{port}"), line
    assert line.endswith("no email will be sent")
    assert "hunter2" not in result.stdout + result.stderr


def test_a_refused_smtp_login_is_a_problem(fresh_database_url) -> None:
    server = MailServer(login=("mailer", "s3cret")).start()
    try:
        url = f"smtp://mailer:n0t-it-2x@127.0.0.1:{server.port}?starttls=off"
        result = doctor(DATABASE_URL=fresh_database_url, GATEWAY_SMTP_URL=url)
    finally:
        server.stop()
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if " email:" in line]
    assert line.startswith(
        f"PROBLEM  email: the SMTP server 127.0.0.1:{server.port} refused the login of 'mailer'"
    ), line
    assert "check the user and password in GATEWAY_SMTP_URL" in line
    assert "n0t-it-2x" not in result.stdout + result.stderr


def test_production_without_smtp_warns_that_nobody_gets_mail(fresh_database_url) -> None:
    result = doctor(GATEWAY_ENV="production", DATABASE_URL=fresh_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if " email:" in line]
    assert line.startswith("warning  email: off: no GATEWAY_SMTP_URL"), line
    assert "nobody receives them" in line
