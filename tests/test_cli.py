"""The gateway command's database chores, run as a user would run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from db.session import Database, create_engine
from db.tables import User

ROOT = Path(__file__).resolve().parent.parent


def _run(
    database_url: str, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))}
    env["DATABASE_URL"] = database_url
    if password is not None:
        env["GATEWAY_ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def test_create_admin_makes_an_admin_who_can_sign_in(fresh_database_url) -> None:
    result = _run(
        fresh_database_url,
        "create-admin",
        "--handle",
        "Root_Admin",
        "--email",
        "ops@example.com",
        password="a long admin password",
    )
    assert result.returncode == 0, result.stderr
    assert "created admin @root_admin" in result.stderr
    database = Database(create_engine(fresh_database_url))
    try:
        async with database.session() as session:
            user = (await session.exec(select(User).where(User.handle == "root_admin"))).one()
    finally:
        await database.dispose()
    assert user.role == "ADMIN" and user.email == "ops@example.com"
    assert PasswordHasher().verify(user.password_hash, "a long admin password")

    again = _run(
        fresh_database_url,
        "create-admin",
        "--handle",
        "root_admin",
        "--email",
        "x@example.com",
        password="a long admin password",
    )
    assert again.returncode != 0 and "already registered" in again.stderr


@pytest.mark.parametrize(
    ("args", "password", "words"),
    [
        (("--handle", "ok_name", "--email", "ops@example.com"), "short", "`password`"),
        (("--handle", "x", "--email", "ops@example.com"), "a long admin password", "`handle`"),
        (("--handle", "ok_name", "--email", "nope"), "a long admin password", "`email`"),
        (("--handle", "ok_name", "--email", "ops@example.com"), None, "GATEWAY_ADMIN_PASSWORD"),
    ],
)
def test_create_admin_refuses_bad_input(fresh_database_url, args, password, words) -> None:
    result = _run(fresh_database_url, "create-admin", *args, password=password)
    assert result.returncode != 0
    assert words in result.stderr, result.stderr
