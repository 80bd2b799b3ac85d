"""The event log (db/event_log.py) and its follower (db/log_follower.py): an event exists
exactly when its write committed, is read in an order that no later commit can go
before, reaches a follower once whatever happens to its connections, and is pruned by
count and age behind a horizon that says which positions can no longer be resumed."""

import asyncio
import functools
from datetime import timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from db import event_log
from db.embedded import asyncpg_dsn
from db.errors import DatabaseUnavailable
from db.event_log import START, read_after
from db.log_follower import LogFollower
from db.session import Database, create_engine
from resolvers import content_writes
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient
from tests.factories import make_content, make_user


@pytest.fixture
async def committed(fresh_database_url):
    """A database whose writes commit (a fresh one), and its URL."""
    engine = create_engine(fresh_database_url)
    yield Database(engine), fresh_database_url
    await engine.dispose()


def _fetch(db: Database):
    return functools.partial(db.fetch, primary=True)


async def _append(db: Database, n: int) -> None:
    async with db.session() as session:
        await event_log.append(session, "test", {"n": n})
        await session.commit()


async def _logged(db: Database) -> list[tuple[str, dict]]:
    read = await read_after(_fetch(db), START, limit=1000)
    return [(e.kind, e.body) for e in read.events]


async def test_an_event_exists_exactly_when_its_write_committed(committed, monkeypatch) -> None:
    db, _ = committed
    author = await make_user(db)
    draft = await make_content(db, author, status="DRAFT")
    client = GraphQLClient(db)
    publish = "mutation($id: ID!) { publishContent(id: $id) { status } }"
    original = content_writes.writes.announce_published

    async def announce_then_fail(session, content):
        await original(session, content)
        raise RuntimeError("the transaction fails after the event was appended")

    monkeypatch.setattr(content_writes.writes, "announce_published", announce_then_fail)
    failed = await client.execute(
        publish, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(author.id)
    )
    assert failed.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert await _logged(db) == [], "nothing is logged by a rolled-back write"

    monkeypatch.setattr(content_writes.writes, "announce_published", original)
    await client.data(
        publish, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(author.id)
    )
    assert await _logged(db) == [("content_published", {"id": draft.id, "author": author.id})]


async def test_no_event_committed_late_goes_before_one_already_read(committed) -> None:
    db, _ = committed
    fetch = _fetch(db)
    async with db.session() as early:
        await event_log.append(early, "test", {"n": "early"})
        # A later transaction commits first.
        await _append(db, 1)
        read = await read_after(fetch, START, limit=10)
        assert read.events == [], "the later one waits for the earlier transaction"
        assert read.waiting
        await early.commit()
    read = await read_after(fetch, START, limit=10)
    assert [e.body["n"] for e in read.events] == ["early", 1]
    assert read.events[0].position < read.events[1].position
    after = await read_after(fetch, read.events[-1].position, limit=10)
    assert (after.events, after.waiting) == ([], False)


async def test_a_follower_hands_on_every_event_once_in_order_while_its_connections_die(
    committed,
) -> None:
    db, url = committed
    follower = LogFollower(_fetch(db), poll_seconds=0.05, backoff=(0.05, 0.2))
    seen: list[int] = []

    async def handle(event) -> None:
        seen.append(event.body["n"])

    follower.start(handle, lost=lambda: None)
    await asyncio.wait_for(follower.moved(), 10)  # it has found its place in the log
    killer = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for n in range(30):
            for _attempt in range(3):  # a write on a connection just cut fails; again
                try:
                    await _append(db, n)
                    break
                except DatabaseUnavailable:
                    continue
            if n % 10 == 5:
                # Every connection of the process but this one, as a failover would.
                await killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        for _ in range(400):
            if len(seen) >= 30:
                break
            follower.wake()
            await asyncio.sleep(0.05)
    finally:
        await killer.close()
        await follower.stop()
    assert seen == list(range(30))


async def test_pruning_keeps_the_newest_events_and_moves_the_horizon(committed) -> None:
    db, _ = committed
    fetch = _fetch(db)
    for n in range(30):
        await _append(db, n)
    first = (await read_after(fetch, START, limit=100)).events
    async with db.session() as session:
        horizon, deleted = await event_log.prune(
            session, max_age=timedelta(days=1), max_events=10
        ) or (None, 0)
        await session.commit()
    assert deleted == 20
    assert horizon == first[19].position
    kept = await read_after(fetch, START, limit=100)
    assert [e.body["n"] for e in kept.events] == list(range(20, 30))
    assert kept.horizon == horizon
    assert first[5].position < kept.horizon, "resuming from there would miss events"
    assert not first[19].position < kept.horizon, "the newest pruned one is still resumable"

    # By age: events older than the retention go whatever their number.
    async with db.session() as session:
        await (await session.connection()).execute(
            sa.text(
                "UPDATE event_log SET created_at = now() - interval '2 hours' WHERE body->>'n' < '25'"
            )
        )
        await session.commit()
    async with db.session() as session:
        pruned = await event_log.prune(session, max_age=timedelta(hours=1), max_events=10)
        await session.commit()
    assert pruned is not None and pruned[1] == 5
    assert [e.body["n"] for e in (await read_after(fetch, START, limit=100)).events] == [
        25,
        26,
        27,
        28,
        29,
    ]


def test_a_process_reads_the_log_for_other_processes_hints_not_its_own() -> None:
    from gateway.app import _wake_on_hint

    def woken(hint: dict | None) -> bool:
        follower = LogFollower(lambda *_: None)
        _wake_on_hint(follower, "this-process", hint)
        return follower._wake.is_set()

    # Its own commits woke its follower directly; its NOTIFY coming back is not news.
    assert not woken({"type": "log", "from": "this-process"})
    assert woken({"type": "log", "from": "another-process"})
    # The LISTEN connection is back: hints sent meanwhile may be lost.
    assert woken(None)
