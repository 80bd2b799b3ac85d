"""Live subscriptions: events from the bus, filtered and resolved as each subscriber's
viewer. Work that is the same for many subscribers (the content row for an access class,
which subscribers muted it, the result of a document for subscribers who would get the
same answer) is done once per event per process."""

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from db.notify import Closed, EventBus, Overflow
from db.queries import contents as content_queries
from db.queries import notifications as notification_queries
from db.queries import tags as tag_queries
from db.queries import users as user_queries
from db.queries.access import ContentAccess
from db.queries.preferences import viewers_muting
from db.session import Database
from db.tables import Content, Notification, Tag, User
from resolvers import policy, validation
from resolvers.context import Context
from resolvers.errors import ServiceUnavailable, Unauthenticated, require_viewer_id

MAX_SUBSCRIBED_TAGS = 50


class SlowConsumer(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__()
        self.message = "This subscription fell too far behind and was ended: subscribe again."


T = TypeVar("T")


async def _shared(awaitable: "Awaitable[T]") -> T:
    """The value of a future that every subscriber of an event shares. Shielded, so one
    subscriber going away (cancelled) does not cancel it for the others; a future that
    is already done is read directly, because shielding costs a new future and two
    callbacks per call, and most of a large fan-out reads finished ones."""
    future = asyncio.ensure_future(awaitable)
    if future.done():
        return future.result()
    return await asyncio.shield(future)


@dataclasses.dataclass(eq=False)
class PublishedEvent:
    """What every subscriber of one contentPublished event shares."""

    db: Database
    content_id: int
    author_id: int
    rows: DataLoader[ContentAccess, Content | None] = dataclasses.field(init=False)
    muted: DataLoader[int, bool] = dataclasses.field(init=False)
    reacted: DataLoader[int, bool] = dataclasses.field(init=False)
    weights: DataLoader[int, dict[int, float]] = dataclasses.field(init=False)
    habits: DataLoader[int, dict[int, float]] = dataclasses.field(init=False)
    half_life_days: float = 30.0
    related: "asyncio.Task[tuple[list[Tag], User | None]] | None" = None
    # Executions of a document, by (document, audience): see Delivery.
    results: "dict[Hashable, asyncio.Future[Any]]" = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        async def rows(accesses: Sequence[ContentAccess]) -> list[Content | None]:
            # One query per distinct access class, not per socket.
            found: list[Content | None] = []
            for access in accesses:
                async with self.db.session() as session:
                    (row,) = await content_queries.contents_by_id(
                        session, [self.content_id], access=access
                    )
                found.append(row)
            return found

        async def muted(viewer_ids: Sequence[int]) -> list[bool]:
            async with self.db.session() as session:
                muting = await viewers_muting(
                    session, viewer_ids, content_id=self.content_id, author_id=self.author_id
                )
            return [v in muting for v in viewer_ids]

        async def reacted(viewer_ids: Sequence[int]) -> list[bool]:
            async with self.db.session() as session:
                reactors = await user_queries.reactors_among(
                    session, viewer_ids, content_id=self.content_id
                )
            return [v in reactors for v in viewer_ids]

        async def weights(viewer_ids: Sequence[int]) -> list[dict[int, float]]:
            tags, _ = await self.tags_and_author()
            async with self.db.session() as session:
                found = await tag_queries.tag_weights_of_viewers(
                    session, viewer_ids, [t.id for t in tags if t.id is not None]
                )
            return [found.get(v, {}) for v in viewer_ids]

        async def habits(viewer_ids: Sequence[int]) -> list[dict[int, float]]:
            tags, _ = await self.tags_and_author()
            async with self.db.session() as session:
                found = await tag_queries.habits_of_viewers(
                    session,
                    viewer_ids,
                    [t.id for t in tags if t.id is not None],
                    now=datetime.now(UTC),
                    half_life_days=self.half_life_days,
                )
            return [found.get(v, {}) for v in viewer_ids]

        self.habits = DataLoader(load_fn=habits)
        self.rows = DataLoader(load_fn=rows)
        self.muted = DataLoader(load_fn=muted)
        self.reacted = DataLoader(load_fn=reacted)
        self.weights = DataLoader(load_fn=weights)

    async def tags_and_author(self) -> tuple[list[Tag], User | None]:
        """Viewer-independent: read once for every subscriber."""
        if self.related is None:
            self.related = asyncio.ensure_future(self._related())
        return await _shared(self.related)

    async def _related(self) -> tuple[list[Tag], User | None]:
        async with self.db.session() as session:
            (tags,) = await content_queries.tags_by_content_id(session, [self.content_id])
            (author,) = await user_queries.users_by_id(session, [self.author_id])
        return tags, author

    async def shared_result(self, key: Hashable, execute: Callable[[], Awaitable[Any]]) -> Any:
        """What `execute` returns, run by the first subscriber asking with `key`; the
        others with the same key wait for that run instead of repeating it."""
        result = self.results.get(key)
        if result is None:
            result = self.results[key] = asyncio.ensure_future(execute())
        return await _shared(result)

    async def prime(self, ctx: Context, row: Content) -> Hashable:
        """Fresh loaders for this subscriber, holding what the event already read, so the
        usual selections (author, tags in the viewer's order, viewerHasReacted) resolve
        from batches shared by all subscribers instead of queries per socket.

        Returns what those viewer-dependent fields depend on for this subscriber: two
        subscribers of one access class with equal values get equal answers."""
        tags, author = await self.tags_and_author()
        # Emptied, not rebuilt: making a connection's thirteen DataLoaders anew for every
        # delivery was a quarter of the CPU of a large fan-out (py-spy).
        loaders = ctx.loaders
        loaders.clear_all()
        loaders.content_by_id.prime(self.content_id, row)
        loaders.tags_by_content_id.prime(self.content_id, tags)
        if author is not None:
            loaders.user_by_id.prime(self.author_id, author)
        if ctx.viewer.id is None:
            return ()
        reacted = await _shared(self.reacted.load(ctx.viewer.id))
        loaders.viewer_reacted_by_content_id.prime(self.content_id, reacted)
        weights = await _shared(self.weights.load(ctx.viewer.id))
        habits = await _shared(self.habits.load(ctx.viewer.id))
        tag_ids = [t.id for t in tags if t.id is not None]
        loaders.viewer_weight_by_tag_id.prime_many({i: weights.get(i) for i in tag_ids})
        loaders.viewer_habit_by_tag_id.prime_many({i: habits.get(i, 0.0) for i in tag_ids})
        return (
            reacted,
            tuple((i, weights[i]) for i in tag_ids if i in weights),
            tuple((i, habits[i]) for i in tag_ids if i in habits),
        )

    async def audiences(
        self, viewers: Sequence["LiveViewer"]
    ) -> list[tuple[Content, Hashable] | None]:
        """For many subscribers at once (the broadcast path, schema/live_broadcast.py):
        for each, the row it may see and its audience (what `Delivery.audience` holds),
        or None when the event is not for it (not visible, muted, none of its tags).
        The same rules as `content_published`, with one statement per question for all
        of them instead of a loader call per subscriber."""
        author_id = self.author_id
        accesses = list(dict.fromkeys(v.access_for(author_id) for v in viewers))
        rows = dict(zip(accesses, await self.rows.load_many(accesses), strict=True))
        tags, _ = await self.tags_and_author()
        names = frozenset(tag.name for tag in tags)
        admitted: list[tuple[LiveViewer, Content] | None] = []
        for viewer in viewers:
            row = rows[viewer.access_for(author_id)]
            visible = row is not None and row.status == "PUBLISHED"
            tagged = viewer.wanted is None or not viewer.wanted.isdisjoint(names)
            admitted.append((viewer, row) if visible and tagged and row is not None else None)
        ids = list({pair[0].viewer_id for pair in admitted if pair and pair[0].viewer_id})
        personal = await self._personal(ids, tags)
        found: list[tuple[Content, Hashable] | None] = []
        for pair in admitted:
            if pair is None:
                found.append(None)
                continue
            viewer, row = pair
            if viewer.viewer_id is None:
                values: Hashable = ()
            else:
                values = personal.get(viewer.viewer_id)
                if values is None:  # muted
                    found.append(None)
                    continue
            found.append((row, (viewer.access_for(author_id), viewer.role, values)))
        return found

    async def _personal(self, viewer_ids: list[int], tags: list[Tag]) -> dict[int, Hashable]:
        """The values of `prime` for each of `viewer_ids` that has not muted the content."""
        if not viewer_ids:
            return {}
        async with self.db.session() as session:
            muting = await viewers_muting(
                session, viewer_ids, content_id=self.content_id, author_id=self.author_id
            )
        ids = [v for v in viewer_ids if v not in muting]
        tag_ids = [t.id for t in tags if t.id is not None]

        async def reactors() -> set[int]:
            async with self.db.session() as session:
                return await user_queries.reactors_among(session, ids, content_id=self.content_id)

        async def weights() -> dict[int, dict[int, float]]:
            async with self.db.session() as session:
                return await tag_queries.tag_weights_of_viewers(session, ids, tag_ids)

        async def habits() -> dict[int, dict[int, float]]:
            async with self.db.session() as session:
                return await tag_queries.habits_of_viewers(
                    session, ids, tag_ids, now=datetime.now(UTC), half_life_days=self.half_life_days
                )

        reacted, weighted, habitual = await asyncio.gather(reactors(), weights(), habits())
        personal: dict[int, Hashable] = {}
        for viewer_id in ids:
            w, h = weighted.get(viewer_id, {}), habitual.get(viewer_id, {})
            personal[viewer_id] = (
                viewer_id in reacted,
                tuple((i, w[i]) for i in tag_ids if i in w),
                tuple((i, h[i]) for i in tag_ids if i in h),
            )
        return personal


@dataclasses.dataclass(frozen=True, slots=True)
class LiveViewer:
    """What deciding whether a contentPublished event reaches a subscriber, and with
    which audience, needs to know about it: read once when it subscribes."""

    viewer_id: int | None
    role: str | None
    access: ContentAccess
    # The access for content by other authors: whose content it is decides only for
    # its author, so every other member shares a class.
    access_to_others: ContentAccess
    wanted: frozenset[str] | None

    @classmethod
    def of(cls, ctx: Context, tags: list[str] | None) -> "LiveViewer":
        access = policy.content_filter(ctx.viewer)
        others = access if access.author_id is None else dataclasses.replace(access, author_id=None)
        return cls(ctx.viewer.id, ctx.viewer.role, access, others, wanted_tags(tags))

    def access_for(self, author_id: int) -> ContentAccess:
        return self.access if self.access.author_id == author_id else self.access_to_others


def wanted_tags(tags: list[str] | None) -> frozenset[str] | None:
    """The normalized tag filter of a contentPublished subscription; raises
    BAD_USER_INPUT for a bad one."""
    if not tags:
        return None
    return frozenset(validation.tag_names(tags, field="tags", maximum=MAX_SUBSCRIBED_TAGS))


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one subscriber. `audience` is everything besides the
    document and its variables that the subscriber's answer depends on (access class,
    role, the viewer-dependent values of prime()); schema/live_sharing.py executes a
    document once per audience and hands the result to every subscriber in it."""

    event: PublishedEvent
    audience: Hashable

    async def result(self, document: Hashable, execute: Callable[[], Awaitable[Any]]) -> Any:
        return await self.event.shared_result((document, self.audience), execute)


def _access_class(ctx: Context, author_id: int) -> ContentAccess:
    """The viewer's access, reduced to what matters for this author's content: whose
    content it is decides only for its author, so every other member shares a class."""
    access = policy.content_filter(ctx.viewer)
    if access.author_id is not None and access.author_id != author_id:
        access = dataclasses.replace(access, author_id=None)
    return access


async def _events(
    ctx: Context, bus: EventBus, accepts: Callable[[dict[str, Any]], bool]
) -> AsyncIterator[dict[str, Any]]:
    """The accepted events until the subscription must end: the viewer's token expired
    or was revoked (logout, anywhere), the subscriber fell behind, or the bus stopped."""
    # Read once: the connection's viewer and token are fixed for this subscription.
    viewer_id = ctx.viewer.id
    expires_at = ctx.token_expires_at

    def wanted(event: dict[str, Any]) -> bool:
        revoked = event.get("type") == "token_revoked" and event.get("user") == viewer_id
        return revoked or accepts(event)

    # One deadline for the whole subscription; asyncio.timeout_at costs a timer handle
    # per event where wait_for would start a task per event for every subscriber.
    loop = asyncio.get_running_loop()
    deadline = None
    if expires_at is not None:
        deadline = loop.time() + (expires_at - datetime.now(UTC)).total_seconds()
    with bus.subscribe(wanted) as subscriber:
        events = aiter(subscriber)
        while True:
            # A queued event is returned without waiting, so the deadline is checked too.
            if deadline is not None and loop.time() >= deadline:
                raise Unauthenticated("The token has expired: sign in again.")
            try:
                async with asyncio.timeout_at(deadline):
                    event = await anext(events)
            except TimeoutError:
                raise Unauthenticated("The token has expired: sign in again.") from None
            except Overflow:
                raise SlowConsumer() from None
            except (Closed, StopAsyncIteration):
                return
            if event.get("type") == "token_revoked" and viewer_id is not None:
                raise Unauthenticated("The token has been revoked: sign in again.")
            yield event


def bus_of(ctx: Context) -> EventBus:
    if ctx.bus is None:
        raise ServiceUnavailable()
    return ctx.bus


async def content_published(
    ctx: Context, tags: list[str] | None
) -> AsyncIterator[tuple[Content, Delivery]]:
    """Each newly published content the viewer may see and has not muted; with `tags`,
    only content carrying one of them."""
    wanted = wanted_tags(tags)
    bus = bus_of(ctx)

    def accepts(event: dict[str, Any]) -> bool:
        return event.get("type") == "content_published"

    async for event in _events(ctx, bus, accepts):
        content_id, author_id = int(event["id"]), int(event["author"])
        shared = bus.shared(
            ("content_published", event.get("event"), content_id),
            functools.partial(
                PublishedEvent,
                ctx.db,
                content_id,
                author_id,
                half_life_days=ctx.ranking.habit_half_life_days,
            ),
        )
        access = _access_class(ctx, author_id)
        row = await _shared(shared.rows.load(access))
        if row is None or row.status != "PUBLISHED":
            continue
        if wanted is not None:
            carried, _ = await shared.tags_and_author()
            if not wanted & {tag.name for tag in carried}:
                continue
        if ctx.viewer.id is not None and await _shared(shared.muted.load(ctx.viewer.id)):
            continue
        personal = await shared.prime(ctx, row)
        yield row, Delivery(shared, (access, ctx.viewer.role, personal))


async def notifications(ctx: Context) -> AsyncIterator[Notification]:
    """The viewer's own notifications as they are written."""
    viewer_id = require_viewer_id(ctx.viewer.id, "receive notifications")
    bus = bus_of(ctx)

    def accepts(event: dict[str, Any]) -> bool:
        return event.get("type") == "notification" and event.get("recipient") == viewer_id

    async for event in _events(ctx, bus, accepts):
        async with ctx.db.session() as session:
            (found,) = await notification_queries.notifications_by_id(
                session, [int(event["id"])], recipient_id=viewer_id
            )
        if found is not None:
            ctx.loaders.clear_all()
            yield found
