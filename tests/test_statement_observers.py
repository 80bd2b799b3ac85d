"""Statement observers belong to an app (db/instrument.py, gateway/app.py): apps built in
one process, as tests build them, each see the statements of their own database and
of no other."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.instrument import StatementObservers
from db.session import BoundDatabase
from tests.gateway_client import gateway
from tests.test_metrics import QUERY, scrape

Seen = list[tuple[str, bool]]


@asynccontextmanager
async def bound(engine: AsyncEngine) -> AsyncIterator[BoundDatabase]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield BoundDatabase(conn)
        await transaction.rollback()


def watched(db: BoundDatabase) -> Seen:
    seen: Seen = []
    observers = StatementObservers()
    observers.add(lambda sql, started, seconds, ok: seen.append((sql, ok)))
    db.observe(observers)
    return seen


async def test_two_databases_report_to_their_own_observers(engine) -> None:
    async with bound(engine) as one, bound(engine) as two:
        seen_one, seen_two = watched(one), watched(two)
        await one.fetch("SELECT 1")
        async with one.session() as session:
            await session.exec(text("SELECT 2"))
        await two.fetch("SELECT 3")
        with pytest.raises(ProgrammingError):
            async with one.session() as session:
                await session.exec(text("SELECT no_such_column"))
    assert ("SELECT 1", True) in seen_one and ("SELECT 2", True) in seen_one
    assert ("SELECT no_such_column", False) in seen_one, "a failed statement is seen too"
    assert seen_two == [("SELECT 3", True)]


async def test_observers_replaced_hear_nothing_more(engine) -> None:
    async with bound(engine) as db:
        before = watched(db)
        after = watched(db)
        async with db.session() as session:
            await session.exec(text("SELECT 1"))
    assert before == [] and ("SELECT 1", True) in after


async def test_an_app_built_later_does_not_take_over_the_statements_of_another(
    engine, tmp_path
) -> None:
    # B, without metrics, is built last: A's statements must still be counted by A.
    # Rate limits kept in memory: shared, B's request would wait for the row that A's
    # transaction (open until the test ends) has written.
    async with (
        bound(engine) as db_a,
        bound(engine) as db_b,
        gateway(db_a, tmp_path, rate_limit_shared=False) as a,
        gateway(db_b, tmp_path, rate_limit_shared=False, metrics=False) as b,
    ):
        before = await scrape(a)
        response = await a.post("/graphql", json={"query": QUERY})
        assert response.status_code == 200 and "errors" not in response.json()
        after_a = await scrape(a)
        response = await b.post("/graphql", json={"query": QUERY})
        assert response.status_code == 200 and "errors" not in response.json()
        after_b = await scrape(a)
    counted = "gateway_db_statements_total"
    assert after_a.get(counted) > before.get(counted), "A's request is counted by A"
    # Scraping /metrics sends no statement: B's request alone would have moved it.
    assert after_b.get(counted) == after_a.get(counted), "B's request is not counted by A"
