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
