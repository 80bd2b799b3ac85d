"""One Postgres per test session: embedded (pgserver), or TEST_DATABASE_URL when set.

The schema is migrated once into a template database; the shared test database and
every fresh database a test asks for are copies of it.
"""

import functools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate
from db.embedded import EmbeddedPostgres, drop_database, ensure_database
from db.feed.rebuild import rebuild
from db.ranking import RankingWeights
from db.read_pool import Planning
from db.session import BoundDatabase, create_engine
from execution.executor import Executor
from execution.extension import WholeQueries
from gateway.auth import Passwords, Tokens
from resolvers.context import Context
from resolvers.cursors import CursorCodec
from resolvers.outreach import Outreach
from resolvers.viewer import Viewer
from tests.mail_server import MailServer

TEMPLATE = f"gateway_test_template_{os.getpid()}"
TEST_SECRET = "test-secret-not-for-production-0123456789"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL to a database on the test server from which other databases can be created."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="gateway-test-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        yield server.url("postgres")
        server.stop()


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    await drop_database(server_url, TEMPLATE)
    await ensure_database(server_url, TEMPLATE)
    url = _with_database(server_url, TEMPLATE)
    engine = create_engine(url)
    await migrate.upgrade(engine)
    # CREATE DATABASE ... TEMPLATE refuses while anyone is connected to the template.
    await engine.dispose()
    yield url
    await drop_database(server_url, TEMPLATE)


class FreshDatabases:
    """Creates migrated databases that tests may commit to; drops them afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []

    async def create(self) -> str:
        name = f"gateway_test_{os.getpid()}_{len(self.names)}_{os.urandom(3).hex()}"
        await ensure_database(self.server_url, name, template=TEMPLATE)
        self.names.append(name)
        return _with_database(self.server_url, name)

    async def drop_all(self) -> None:
        for name in self.names:
            await drop_database(self.server_url, name)


@pytest.fixture
async def fresh_databases(server_url: str, template_url: str) -> AsyncIterator[FreshDatabases]:
    databases = FreshDatabases(server_url)
    yield databases
    await databases.drop_all()


@pytest.fixture
async def fresh_database_url(fresh_databases: FreshDatabases) -> str:
    return await fresh_databases.create()


@pytest.fixture(scope="session")
async def engine(server_url: str, template_url: str) -> AsyncIterator[AsyncEngine]:
    name = f"gateway_test_{os.getpid()}_shared"
    await drop_database(server_url, name)
    await ensure_database(server_url, name, template=TEMPLATE)
    engine = create_engine(_with_database(server_url, name))
    yield engine
    await engine.dispose()
    await drop_database(server_url, name)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[BoundDatabase]:
    """A database whose every write is rolled back when the test ends."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield BoundDatabase(conn)
        await transaction.rollback()


# Cheap parameters: tests hash many passwords; the production ones are argon2's defaults.
PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
TOKENS = Tokens(TEST_SECRET, timedelta(hours=1))
WEIGHTS = RankingWeights()


def build_test_schema() -> Any:
    from gateway.errors import ClassifyErrors
    from schema import build_schema

    return build_schema(extensions=[ClassifyErrors, WholeQueries])


def executor_for(schema: Any, weights: RankingWeights = WEIGHTS) -> Executor:
    return Executor(schema, weights, functools.partial(rebuild, weights=weights))


def make_context(
    db: Any, viewer: Viewer | None = None, *, executor: Executor, **more: Any
) -> Context:
    return Context(
        viewer=viewer or Viewer.anonymous(),
        db=db,
        reads=executor,
        cursors=CursorCodec(TEST_SECRET),
        passwords=PASSWORDS,
        tokens=TOKENS,
        ranking=executor.weights,
        **more,
    )


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) for a module's tests of what the gateway sends."""
    server = MailServer().start()
    yield server
    server.stop()


class PlanningRecorder(BoundDatabase):
    """The test's connection, noting which read pool (how Postgres plans) each read
    asks for: a single connection has no pools to send it to."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self.sent: list[Planning] = []

    async def fetch(
        self, sql: str, *args: Any, planning: Planning = Planning.CHOSEN, primary: bool = False
    ) -> list[Any]:
        self.sent.append(planning)
        return await super().fetch(sql, *args)


class GraphQLClient:
    """Runs documents through the real schema (with the error classifier) as a viewer.
    A query the executor cannot answer whole fails the test unless `fallback` says it
    is expected (test_queries_without_a_plan_are_resolved_field_by_field_and_counted in
    tests/test_reads.py covers that path)."""

    def __init__(
        self, db: Any, *, weights: RankingWeights = WEIGHTS, outreach: Outreach | None = None
    ) -> None:
        self.db = db
        self.outreach = outreach or Outreach()
        self.schema = build_test_schema()
        self.executor = executor_for(self.schema, weights)

    def context(self, viewer: Viewer | None = None) -> Context:
        return make_context(self.db, viewer, executor=self.executor, outreach=self.outreach)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        viewer: Viewer | None = None,
        fallback: bool = False,
    ) -> Any:
        before = self.executor.fallbacks
        result = await self.schema.execute(
            query, variable_values=variables, context_value=self.context(viewer)
        )
        if not fallback:
            assert self.executor.fallbacks == before, f"the executor had no plan for {query}"
        return result

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        result = await self.execute(query, variables, **kw)
        assert result.errors is None, result.errors
        return result.data


@pytest.fixture
def gql(db: BoundDatabase) -> GraphQLClient:
    return GraphQLClient(db)
