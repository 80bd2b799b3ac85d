"""The live path in one process (execution/broadcast.py): the event log's events, as
its follower reads them, delivered to subscriptions with the work shared, the filters of
each viewer applied, and slow sockets cut off."""

import asyncio
import functools
from typing import Any

import orjson
import pytest

from db import event_log
from db.log_follower import LogFollower
from db.session import Database, create_engine
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient
from tests.factories import make_content, make_user


@pytest.fixture
async def live(fresh_database_url):
    """A database whose commits wake the followers of the event log made on it."""
    engine = create_engine(fresh_database_url)
    db = Database(engine)
    followers: list[LogFollower] = []

    def wake(_flags: frozenset[str]) -> None:
        for follower in followers:
            follower.wake()

    db.after_commit.append(wake)
    yield db, followers
    for follower in followers:
        await follower.stop()
    await engine.dispose()


FAN_OUT_QUERY = """subscription { contentPublished { title viewerHasReacted author { handle }
                                                 tags { name viewerAffinity } } }"""


def _live(db, followers):
    """A schema, its executor and a process's broadcaster, as create_app builds them."""
    from execution.broadcast import Broadcaster
    from tests.conftest import build_test_schema, executor_for

    schema = build_test_schema()
    executor = executor_for(schema)
    follower = LogFollower(functools.partial(db.fetch, primary=True), poll_seconds=0.05)
    followers.append(follower)
    broadcaster = Broadcaster(follower, executor)
    broadcaster.start()
    return schema, executor, broadcaster


async def _fan_out(db, followers, viewers, author, query=FAN_OUT_QUERY) -> tuple[int, list]:
    """Statements one publish costs across `viewers` subscribers, and what each got."""
    from db.session import StatementCounter
    from tests.conftest import make_context

    schema, executor, broadcaster = _live(db, followers)
    streams = []
    for viewer in viewers:
        context = make_context(db, viewer, executor=executor, live=broadcaster)
        stream = await schema.subscribe(query, context_value=context)
        streams.append(stream)
    firsts = [asyncio.ensure_future(anext(stream)) for stream in streams]  # type: ignore[arg-type]
    await _until(lambda: len(broadcaster.published) == len(streams))
    draft = await make_content(db, author, status="DRAFT", tags=("python", "rust"))
    client = GraphQLClient(db)
    with StatementCounter(db) as counter:
        await client.data(
            "mutation($id: ID!) { publishContent(id: $id) { id } }",
            {"id": encode_id("Content", draft.id)},
            viewer=Viewer.member(author.id),
        )
        results = await asyncio.wait_for(asyncio.gather(*firsts), 10)
    for stream in streams:
        await stream.aclose()  # type: ignore[union-attr]
    return _work(counter), results


def _work(counter) -> int:
    """Statements an event cost, without the followers' reads of the log (made as often
    as they are woken, whatever the subscribers)."""
    return sum(1 for statement in counter.statements if "event_log" not in statement)


def _delivered(results) -> int:
    return sum(1 for r in results if r.errors is None and r.data["contentPublished"])


async def test_an_events_work_is_shared_not_repeated_per_subscriber(live) -> None:
    db, followers = live
    author = await make_user(db)
    members = [await make_user(db) for _ in range(24)]
    few = [Viewer.anonymous(), *(Viewer.member(m.id) for m in members[:3])]
    many = [Viewer.anonymous()] * 4 + [Viewer.member(m.id) for m in members]
    few_statements, few_results = await _fan_out(db, followers, few, author)
    many_statements, many_results = await _fan_out(db, followers, many, author)
    assert (_delivered(few_results), _delivered(many_results)) == (len(few), len(many))
    assert few_statements == many_statements, "the cost of an event must not grow with sockets"


class _CountingRenderer:
    """Counts executions of a document selecting bodyHtml: it renders once per run."""

    def __init__(self, render) -> None:
        self.render, self.calls = render, 0

    def __call__(self, body: str, **options: object) -> str:
        self.calls += 1
        return self.render(body, **options)


async def test_a_document_is_executed_once_per_audience_not_per_socket(live, monkeypatch) -> None:
    import schema.content
    from tests.factories import set_preferences

    db, followers = live
    author = await make_user(db, handle="writer")
    plain = [await make_user(db) for _ in range(3)]
    fan = await make_user(db)
    await set_preferences(db, fan, weights={"rust": 0.9})
    viewers = [
        *(Viewer.member(m.id) for m in plain),
        Viewer.member(fan.id),
        Viewer.anonymous(),
        Viewer.anonymous(),
    ]
    renderer = _CountingRenderer(schema.content.render_markdown)
    monkeypatch.setattr(schema.content, "render_markdown", renderer)
    query = """subscription { contentPublished { title bodyHtml viewerHasReacted
                 author { handle } tags { name viewerAffinity } } }"""
    _, results = await _fan_out(db, followers, viewers, author, query)

    assert _delivered(results) == len(viewers)
    # Three audiences: members without preferences, the member weighting rust, anonymous.
    assert renderer.calls == 3
    tags = [[t["name"] for t in r.data["contentPublished"]["tags"]] for r in results]
    assert tags == [["python", "rust"]] * 3 + [["rust", "python"]] + [["python", "rust"]] * 2
    fan_affinity = {
        t["name"]: t["viewerAffinity"] for t in results[3].data["contentPublished"]["tags"]
    }
    assert fan_affinity == {"python": 0.0, "rust": 0.9}
    assert all(r.data["contentPublished"]["author"]["handle"] == "writer" for r in results)


async def test_a_personal_document_is_executed_for_each_socket(live, monkeypatch) -> None:
    import schema.content

    db, followers = live
    author = await make_user(db)
    readers = [await make_user(db) for _ in range(3)]
    viewers = [Viewer.member(r.id) for r in readers] + [Viewer.member(author.id)]
    renderer = _CountingRenderer(schema.content.render_markdown)
    monkeypatch.setattr(schema.content, "render_markdown", renderer)
    # Whose email shows depends on who asks, beyond what an audience holds.
    query = "subscription { contentPublished { bodyHtml author { email } } }"
    _, results = await _fan_out(db, followers, viewers, author, query)

    assert renderer.calls == len(viewers)
    emails = [r.data["contentPublished"]["author"]["email"] for r in results]
    assert emails == [None, None, None, author.email]


class _Sockets:
    """Subscriptions on the broadcast path (execution/broadcast.py), each writing its
    frames to a list instead of a socket; `stall` makes a socket's writes never finish."""

    def __init__(self, db, followers, query: str = FAN_OUT_QUERY) -> None:
        self.db, self.query = db, query
        self.schema, self.executor, self.broadcaster = _live(db, followers)
        self.frames: dict[str, list[dict]] = {}
        self.ends: dict[str, list] = {}
        self.tasks: list[asyncio.Task] = []
        self.pipes: dict[str, Any] = {}

    async def open(
        self,
        op_id: str,
        viewer,
        *,
        stall: bool = False,
        query: str | None = None,
        variables=None,
        socket: str | None = None,
    ) -> None:
        """A subscription `op_id` on the socket `socket` (its own unless named)."""
        from execution.pipe import Outlet, Pipe, outlet
        from gateway.ws_handlers import classify_errors
        from tests.conftest import make_context

        schema = self.schema
        context = make_context(self.db, viewer, executor=self.executor, live=self.broadcaster)
        self.frames.setdefault(op_id, [])
        ends = self.ends.setdefault(op_id, [])

        async def send(text: str) -> None:
            if stall:
                await asyncio.Event().wait()
            frame = orjson.loads(text)
            self.frames[frame["id"]].append(frame)

        pipe = self.pipes.get(socket or op_id)
        if pipe is None:
            pipe = self.pipes[socket or op_id] = Pipe(send)

        async def run() -> None:
            outlet.set(Outlet(op_id, "next", pipe, classify_errors))
            stream = await schema.subscribe(
                query or self.query, variable_values=variables, context_value=context
            )
            async for result in stream:  # type: ignore[union-attr]
                ends.append(result)

        self.tasks.append(asyncio.create_task(run()))

    async def joined(self) -> None:
        """Returns once every subscription opened has joined the live events: nothing
        published after this is missed."""
        await _until(lambda: len(self.broadcaster.published) == len(self.tasks))

    def titles(self, op_id: str) -> list[str]:
        return [f["payload"]["data"]["contentPublished"]["title"] for f in self.frames[op_id]]

    async def close(self) -> None:
        writers = [p.writer for p in self.pipes.values() if p.writer is not None]
        for task in [*self.tasks, *writers]:
            task.cancel()
        await asyncio.gather(*self.tasks, *writers, return_exceptions=True)


async def _announce(db, content) -> None:
    async with db.session() as session:
        body = {"id": content.id, "author": content.author_id}
        await event_log.append(session, "content_published", body)
        await session.commit()


async def _published(db, author, title: str, tags=()) -> None:
    await _announce(db, await make_content(db, author, title=title, tags=tags))


async def _until(condition, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_broadcast_costs_the_same_statements_for_few_and_many_sockets(live) -> None:
    from db.session import StatementCounter

    db, followers = live
    author = await make_user(db)
    members = [await make_user(db) for _ in range(24)]
    counts = []
    for viewers in (
        [Viewer.anonymous(), *(Viewer.member(m.id) for m in members[:3])],
        [Viewer.anonymous()] * 4 + [Viewer.member(m.id) for m in members],
    ):
        sockets = _Sockets(db, followers)
        for n, viewer in enumerate(viewers):
            await sockets.open(str(n), viewer)
        await sockets.joined()
        content = await make_content(
            db, author, title=f"to {len(viewers)}", tags=("python", "rust")
        )
        with StatementCounter(db) as counter:
            await _announce(db, content)
            await _until(lambda s=sockets, v=viewers: all(s.frames[str(n)] for n in range(len(v))))
        counts.append(_work(counter))
        await sockets.close()
        frame = sockets.frames["1"][0]
        assert frame["id"] == "1" and frame["type"] == "next"
        assert frame["payload"]["data"]["contentPublished"]["title"] == f"to {len(viewers)}"
    assert counts[0] == counts[1], "the cost of an event must not grow with sockets"


async def test_the_broadcast_filters_for_each_viewer(live) -> None:
    from tests.factories import set_preferences

    db, followers = live
    author = await make_user(db)
    muting, fan, plain = [await make_user(db) for _ in range(3)]
    await set_preferences(db, muting, muted_tags=("noise",))
    await set_preferences(db, fan, weights={"rust": 0.9})
    sockets = _Sockets(db, followers)
    await sockets.open("anonymous", Viewer.anonymous())
    await sockets.open("muting", Viewer.member(muting.id))
    await sockets.open("fan", Viewer.member(fan.id))
    tagged = "subscription($tags: [String!]) { contentPublished(tags: $tags) { title } }"
    await sockets.open(
        "rust only", Viewer.member(plain.id), query=tagged, variables={"tags": ["#Rust"]}
    )
    await sockets.joined()
    await _published(db, author, "noisy", tags=("noise", "python"))
    await _published(db, author, "rusty", tags=("python", "rust"))
    await _until(lambda: len(sockets.frames["anonymous"]) == 2)
    await _until(
        lambda: [len(sockets.frames[v]) for v in ("muting", "fan", "rust only")] == [1, 2, 1]
    )
    await asyncio.sleep(0.2)  # and nothing more than these
    await sockets.close()
    assert sockets.titles("anonymous") == ["noisy", "rusty"]
    assert sockets.titles("muting") == ["rusty"]
    assert sockets.titles("rust only") == ["rusty"]
    fan_tags = sockets.frames["fan"][1]["payload"]["data"]["contentPublished"]["tags"]
    assert [t["name"] for t in fan_tags] == ["rust", "python"]
    assert {t["name"]: t["viewerAffinity"] for t in fan_tags} == {"rust": 0.9, "python": 0.0}


async def test_a_stalled_socket_is_cut_off_while_the_others_receive(live, monkeypatch) -> None:
    import execution.pipe

    # About three frames of this document.
    monkeypatch.setattr(execution.pipe, "MAX_PENDING_BYTES", 600)
    db, followers = live
    author = await make_user(db)
    sockets = _Sockets(db, followers)
    await sockets.open("slow", Viewer.anonymous(), stall=True)
    await sockets.open("fast", Viewer.anonymous())
    await sockets.joined()
    for n in range(8):
        await _published(db, author, f"event {n}")
    await _until(lambda: len(sockets.frames["fast"]) == 8)
    await _until(lambda: bool(sockets.ends["slow"]))
    assert sockets.titles("fast") == [f"event {n}" for n in range(8)]
    (ended,) = sockets.ends["slow"]
    assert ended.errors[0].extensions["code"] == "SERVICE_UNAVAILABLE"
    assert sockets.frames["slow"] == []
    assert all(m.outlet.operation_id != "slow" for m in sockets.broadcaster.published)
    await sockets.close()


# Issue 15's document: nested pages and viewer fields (cost 907).
HEAVY = """subscription { contentPublished { id title author { handle viewerFollows
  contents(first: 100) { totalCount edges { node { id title body tags { name contentCount } } } }
} } }"""


async def test_the_heavy_document_is_executed_once_per_event_and_audience(
    live, monkeypatch
) -> None:
    from db.session import StatementCounter

    db, followers = live
    author = await make_user(db, handle="prolific")
    for n in range(5):
        await make_content(db, author, title=f"older {n}", tags=("python",))
    reader = await make_user(db)
    counts, calls = [], []
    for sockets_count, per_socket in ((1, 2), (5, 10)):
        sockets = _Sockets(db, followers, HEAVY)
        viewers = []
        original = sockets.executor.payloads

        async def counting(*args, viewers=viewers, original=original):
            viewers.append(args[-1])
            return await original(*args)

        monkeypatch.setattr(sockets.executor, "payloads", counting)
        ops = [f"s{s}-{n}" for s in range(sockets_count) for n in range(per_socket)]
        for op in ops:
            await sockets.open(op, Viewer.anonymous(), socket=op.split("-")[0])
        # The same signed-in viewer on several operations is one audience too.
        for n in range(3):
            await sockets.open(f"reader-{n}", Viewer.member(reader.id), socket="reader")
        await sockets.joined()
        content = await make_content(db, author, title=f"for {len(ops)}", tags=("python",))
        with StatementCounter(db) as counter:
            await _announce(db, content)
            everyone = [*ops, *(f"reader-{n}" for n in range(3))]
            await _until(lambda s=sockets, e=everyone: all(s.frames[op] for op in e))
        counts.append(_work(counter))
        calls.append(sorted((tuple(v) for v in viewers), key=repr))
        answers = {orjson.dumps(sockets.frames[op][0]["payload"]) for op in ops}
        assert len(answers) == 1, "every anonymous socket gets the same answer"
        page = sockets.frames[ops[0]][0]["payload"]["data"]["contentPublished"]["author"]
        assert page["contents"]["totalCount"] == 5 + len(counts)  # and those published here
        await sockets.close()
    # One statement for the anonymous audience and one for the reader, for 2 or 50.
    assert calls == [sorted([(None,), (reader.id,)], key=repr)] * 2
    assert counts[0] == counts[1], "the cost of an event must not grow with subscriptions"


async def test_a_socket_that_does_not_read_is_cut_off_at_its_byte_bound(live, monkeypatch) -> None:
    import execution.pipe

    # Frames of this document are ~160 characters: ten operations' first frames do not
    # fit behind the one in flight, and what those cut off leave is filled again.
    monkeypatch.setattr(execution.pipe, "MAX_PENDING_BYTES", 1_000)
    db, followers = live
    author = await make_user(db)
    sockets = _Sockets(db, followers)
    for n in range(10):
        await sockets.open(f"stalled-{n}", Viewer.anonymous(), stall=True, socket="stalled")
    await sockets.open("reading", Viewer.anonymous())
    await sockets.joined()
    for n in range(5):
        await _published(db, author, f"event {n}")
    await _until(lambda: len(sockets.frames["reading"]) == 5)
    stalled = [sockets.ends[f"stalled-{n}"] for n in range(10)]
    await _until(lambda: sum(1 for ends in stalled if ends) >= 4)
    # Six frames fit, so at most six operations may still be waiting to be written.
    assert sum(1 for ends in stalled if ends) >= 4
    assert sockets.pipes["stalled"].pending_bytes <= 1_000
    codes = {ends[0].errors[0].extensions["code"] for ends in stalled if ends}
    assert codes == {"SERVICE_UNAVAILABLE"}
    assert sockets.titles("reading") == [f"event {n}" for n in range(5)]
    await sockets.close()


async def test_event_work_holds_no_more_connections_than_it_may(live) -> None:
    db, followers = live
    author = await make_user(db)
    sockets = _Sockets(db, followers)
    sockets.broadcaster.connections = asyncio.Semaphore(2)
    in_flight, most = 0, 0
    fetch = db.fetch

    async def counted(*args, **kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.05)  # long enough for the others to start meanwhile
            return await fetch(*args, **kwargs)
        finally:
            in_flight -= 1

    db.fetch = counted  # type: ignore[method-assign]
    # Eight documents: eight statements for one event.
    fields = ["title", "summary", "body", "language", "status", "visibility", "createdAt", "id"]
    for field in fields:
        await sockets.open(
            field, Viewer.anonymous(), query=f"subscription {{ contentPublished {{ {field} }} }}"
        )
    await sockets.joined()
    await _published(db, author, "to eight documents")
    await _until(lambda: all(sockets.frames[f] for f in fields))
    await sockets.close()
    assert most == 2
