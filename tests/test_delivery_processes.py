"""The delivery guarantee with real `gateway worker` processes, a real SMTP server and a
database they share: an SMTP server down for a while, a worker killed mid-batch, two
workers at once; and `gateway send-digests --all`."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from db import outbox
from db.session import Database, create_engine
from db.tables import EmailSettings, User
from tests.conftest import TEST_SECRET
from tests.factories import make_content, make_user
from tests.live_server import ROOT, stop_process
from tests.mail_server import MailServer

pytestmark = pytest.mark.slow


class Worker:
    def __init__(self, database_url: str, smtp_url: str, log: Path, **settings: str) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))
        }
        env |= {
            "DATABASE_URL": database_url,
            "GATEWAY_SECRET_KEY": TEST_SECRET,
            "GATEWAY_DATA_DIR": str(log.parent),
            "GATEWAY_SMTP_URL": smtp_url,
            "GATEWAY_WORKER_POLL_SECONDS": "0.2",
            "GATEWAY_DELIVERY_RETRY_SECONDS": "0.2",
            **settings,
        }
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "worker"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_started(self, timeout: float = 30) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "delivery worker" in self.log.read_text() and "started" in self.log.read_text():
                return self
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"worker did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer()
    yield server
    server.stop()


@pytest.fixture
async def database(fresh_database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(fresh_database_url))
    yield database
    await database.dispose()


async def _queue_messages(database: Database, count: int) -> list[str]:
    """One account email to each of `count` new users, queued in one transaction."""
    users = [await make_user(database) for _ in range(count)]
    async with database.session() as session:
        for user in users:
            await outbox.enqueue(
                session,
                channel="EMAIL",
                topic="password_changed",
                recipient_id=user.id,
                payload={"email": user.email},
            )
        await session.commit()
    return [user.email for user in users]


def _received(mail: MailServer) -> Counter[str]:
    with mail.lock:
        return Counter(str(m["To"]).split("<")[-1].rstrip(">") for m in mail.messages)


async def _statuses(database: Database) -> Counter[str]:
    async with database.session() as session:
        rows = (await session.exec(sa.text("SELECT status FROM outbox"))).all()
    return Counter(row[0] for row in rows)


async def _statuses_once(database: Database, expected: Counter[str]) -> Counter[str]:
    """The outbox's statuses once they are `expected` (or after 10 s, for the test to
    say what differs): a worker marks a message sent after the server's reply."""
    deadline = time.monotonic() + 10
    while True:
        found = await _statuses(database)
        if found == expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def _logged(path: Path, text: str, within: float = 10) -> str:
    """The log once it holds `text` (or after `within` seconds)."""
    deadline = time.monotonic() + within
    while True:
        logged = path.read_text()
        if text in logged or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


async def test_smtp_server_down_for_a_while_then_back_every_message_arrives_once(
    database, fresh_database_url, mail, tmp_path
) -> None:
    worker = Worker(fresh_database_url, mail.url, tmp_path / "worker.log").wait_started()
    try:
        addresses = await _queue_messages(database, 5)
        # The server is down: the worker keeps trying, backing off.
        assert "cannot reach the SMTP server" in await asyncio.to_thread(
            _logged, worker.log, "cannot reach"
        )
        mail.start()
        mail.wait_for(5, timeout=20)
        assert await _statuses_once(database, Counter({"SENT": 5})) == Counter({"SENT": 5})
        await asyncio.sleep(0.5)  # time for a message sent twice to arrive twice
        assert _received(mail) == Counter(addresses), "each message exactly once"
        async with database.session() as session:
            attempts = (await session.exec(sa.text("SELECT max(attempts) FROM outbox"))).one()
        assert attempts[0] == 1, "an unreachable server costs a message none of its attempts"
    finally:
        worker.stop()


async def test_a_worker_killed_mid_batch_and_restarted_sends_nothing_twice(
    database, fresh_database_url, mail, tmp_path
) -> None:
    mail.hold_at = 3  # the third message: the worker is killed while it is being sent
    mail.start()
    settings = {"GATEWAY_DELIVERY_LEASE_SECONDS": "3", "GATEWAY_DELIVERY_BATCH_SIZE": "10"}
    smtp = mail.url.replace("timeout=5", "timeout=1")
    addresses = await _queue_messages(database, 6)
    first = Worker(fresh_database_url, smtp, tmp_path / "first.log", **settings).wait_started()
    assert mail.held.wait(20), "the third message never arrived"
    first.kill()
    mail.release.set()
    assert Counter(_received(mail)) == Counter(addresses[:2])

    second = Worker(fresh_database_url, smtp, tmp_path / "second.log", **settings)
    try:
        second.wait_started()
        mail.wait_for(6, timeout=20)
        assert await _statuses_once(database, Counter({"SENT": 6})) == Counter({"SENT": 6})
        await asyncio.sleep(0.5)  # time for a message sent twice to arrive twice
        assert _received(mail) == Counter(addresses), "each message exactly once"
        stopped = "claimed by a worker that stopped"
        assert stopped in await asyncio.to_thread(_logged, second.log, stopped)
    finally:
        second.stop()


async def test_two_workers_share_the_work_and_send_each_message_once(
    database, fresh_database_url, mail, tmp_path
) -> None:
    mail.delay = 0.02
    mail.start()
    settings = {"GATEWAY_DELIVERY_BATCH_SIZE": "2"}
    workers = [
        Worker(fresh_database_url, mail.url, tmp_path / f"worker{n}.log", **settings)
        for n in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_started()
        addresses = await _queue_messages(database, 30)
        mail.wait_for(30, timeout=30)
        assert await _statuses_once(database, Counter({"SENT": 30})) == Counter({"SENT": 30})
        await asyncio.sleep(0.5)  # time for a message sent twice to arrive twice
        assert _received(mail) == Counter(addresses), "each message exactly once"
        async with database.session() as session:
            senders = (
                await session.exec(sa.text("SELECT count(DISTINCT claimed_by) FROM outbox"))
            ).one()
        assert senders[0] == 2, "both workers took a share"
    finally:
        for worker in workers:
            worker.stop()


async def test_send_digests_all_sends_every_enabled_digest_now(
    database, fresh_database_url, mail, tmp_path
) -> None:
    mail.start()
    reader = await make_user(database, handle="reader")
    author = await make_user(database, handle="ada")
    await make_content(database, author, title="Fresh", at=datetime.now(UTC) - timedelta(hours=1))
    async with database.session() as session:
        await session.exec(
            sa.update(User).where(User.id == reader.id).values(email_verified_at=sa.func.now())
        )
        session.add(
            EmailSettings(
                user_id=reader.id,  # type: ignore[arg-type]
                digest="WEEKLY",
                next_digest_at=datetime.now(UTC) + timedelta(days=7),
            )
        )
        await session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))}
    env |= {
        "DATABASE_URL": fresh_database_url,
        "GATEWAY_SECRET_KEY": TEST_SECRET,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_SMTP_URL": mail.url,
    }
    command = [sys.executable, "-m", "gateway.cli", "send-digests"]

    def run(*extra: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(
            [*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    due = await asyncio.to_thread(run)
    assert due.returncode == 0, due.stderr
    assert "0 digests with something new" in due.stderr, "not due for a week"
    everyone = await asyncio.to_thread(run, "--all")
    assert everyone.returncode == 0, everyone.stderr
    assert "1 digests with something new" in everyone.stderr
    (message,) = mail.wait_for(1)
    assert message["Subject"] == "Your weekly digest: 1 new item"
