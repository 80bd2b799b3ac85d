"""Reads, answered with one statement each: a whole query before strawberry starts
(`answer`), or one field strawberry is resolving (`field`, `entity`: a root field when
the whole query has no plan, and what mutations return).

A query has no plan only when it asks for something the registry cannot serve
(introspection mixed with data, say); strawberry then resolves it, and each root field
still compiles its own selection. `fallbacks` counts those, and tests fail on any they
did not expect. Errors are reported once, where they happen: an argument's at its field,
the database's at every field the statement served; the gateway classifies them."""

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from graphql import FragmentDefinitionNode, GraphQLError, OperationDefinitionNode
from graphql.execution.values import VariableValues, get_variable_values

from db.feed import jobs
from db.ranking import RankingWeights
from db.read_pool import Planning
from db.reads import shape
from db.reads.audience import audience_statement
from db.reads.compile import Compiled, StatementCache
from db.reads.shape import By
from db.reads.sources import slot_name
from db.session import Database
from execution.assemble import INVALID, Assembler
from execution.binding import Binder, Bound, FeedHeads, viewer_kind
from execution.plan import (
    NotPlanned,
    ObjectPlan,
    OperationPlan,
    Planner,
    RootTypename,
    directive_variables,
    uses_audience,
    variables_of,
)
from resolvers.context import Context, confirm_viewer
from resolvers.viewer import Viewer

log = logging.getLogger("gateway.reads")

MAX_PLANS = 500
# Characters of the documents whose plans are kept: a plan holds nodes of its parsed
# document (for the arguments), which keep the whole document alive.
MAX_PLAN_CHARS = 500_000


@dataclass(frozen=True, slots=True)
class Answer:
    data: dict[str, Any] | None
    errors: list[GraphQLError]


# Each viewer's answer to a live event (None: not theirs to see).
Payloads = dict[int | None, Any]
# The slot of a live payload's lookup, clear of the slots of its own lists.
_PAYLOAD_SLOT = 10_000


class _NoPlan:
    pass


class TokenMoved(Exception):
    """The statement found that its viewer's token version or role is no longer the one
    it was bound for: its answer is not theirs to see."""


NO_PLAN = _NoPlan()


class Plans:
    """Plans by document, operation and the values @skip/@include read; the least
    recently used forgotten, bounded by count and by the documents' characters."""

    def __init__(self, maxsize: int = MAX_PLANS, max_chars: int = MAX_PLAN_CHARS) -> None:
        self.maxsize = maxsize
        self.max_chars = max_chars
        self._chars = 0
        self._plans: OrderedDict[tuple[Any, ...], OperationPlan | _NoPlan] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> OperationPlan | _NoPlan | None:
        found = self._plans.get(key)
        if found is not None:
            self._plans.move_to_end(key)
        return found

    def put(self, key: tuple[Any, ...], plan: OperationPlan | _NoPlan) -> None:
        query: str = key[0]
        if len(query) > self.max_chars:
            return
        self._plans[key] = plan
        self._chars += len(query)
        while len(self._plans) > self.maxsize or self._chars > self.max_chars:
            (evicted, *_), _ = self._plans.popitem(last=False)
            self._chars -= len(evicted)


# Rebuilds a viewer's stored feed (db/feed/), before their first page is read again.
Rebuild = Callable[[Database, int], Awaitable[object]]


class Executor:
    def __init__(self, schema: Any, weights: RankingWeights, rebuild: Rebuild) -> None:
        self.schema = schema
        self.planner = Planner(schema._schema)
        self.plans = Plans()
        self.statements = StatementCache(weights)
        self.rebuild = rebuild
        self.weights = weights
        self.fallbacks = 0
        # Called on each one as well (the metrics counter, gateway/app.py).
        self.on_fallback: Callable[[], object] | None = None
        self._audiences: dict[tuple[bool, bool], Compiled] = {}
        self.heads = FeedHeads()
        self._touch_statement: Compiled | None = None

    # --- whole queries ------------------------------------------------------------------

    async def answer(
        self,
        query: str,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any] | None,
        ctx: Context,
    ) -> Answer | None:
        """The query's answer, or None when it has no plan (or its variables are wrong,
        which strawberry reports)."""
        coerced = get_variable_values(
            self.schema._schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        names = directive_variables(operation, fragments)
        name = operation.name.value if operation.name else None
        key = (query, name, tuple(repr(coerced.coerced.get(n)) for n in names))
        plan = self.plans.get(key)
        if plan is None:
            try:
                plan = self.planner.operation(operation, fragments, coerced)
            except NotPlanned as why:
                log.debug("no plan for %s: %s", name or "an unnamed operation", why)
                plan = NO_PLAN
            self.plans.put(key, plan)
        if isinstance(plan, _NoPlan):
            self.fallbacks += 1
            if self.on_fallback is not None:
                self.on_fallback()
            return None
        return await self._operation(plan, coerced, ctx)

    async def _operation(
        self, plan: OperationPlan, variables: VariableValues, ctx: Context
    ) -> Answer:
        rebuilt = False
        while True:
            now = datetime.now(UTC)
            try:
                bound = Binder(self.schema, ctx, variables, now, heads=self.heads).operation(plan)
            except Exception as error:  # a fault of ours, not the client's: masked
                return _failed(plan, error)
            if ctx.token_check is not None and (bound.errors or not bound.statement.roots):
                # What the binder refuses depends on who the viewer is, and no statement
                # would check them: confirmed first, then bound again.
                await confirm_viewer(ctx)
                continue
            assembler = Assembler(ctx, bound, now)
            try:
                answer = await self._run(bound, ctx)
            except TokenMoved:
                await confirm_viewer(ctx)  # Unauthenticated, or who they are now
                continue
            except Exception as error:  # every field the statement served fails with it
                assembler.failure = error
                answer = []
            data = assembler.operation(plan, answer)
            if assembler.unserved_feed and ctx.viewer.id is not None:
                self.heads.gone(ctx.viewer.id)  # asked again in full
                continue
            if assembler.stale_feed and not rebuilt and ctx.viewer.id is not None:
                self.heads.gone(ctx.viewer.id)  # the rebuild clears the head
                await self.rebuild(ctx.db, ctx.viewer.id)
                rebuilt = True
                continue
            self._heads_stored(bound, ctx, now)
            if assembler.touch_feed and ctx.viewer.id is not None:
                await self._touch(ctx, now)
            return Answer(data, assembler.errors)

    async def _touch(self, ctx: Context, now: datetime) -> None:
        """What a lean first page found due to write (db/feed/jobs.py touch_statement)."""
        if self._touch_statement is None:
            self._touch_statement = jobs.touch_statement(self.weights)
        compiled = self._touch_statement
        values = {"viewer": ctx.viewer.id, "now": now}
        await ctx.db.fetch(compiled.sql, *compiled.arguments(values), primary=True)

    def _heads_stored(self, bound: Bound, ctx: Context, now: datetime) -> None:
        """Notes the head a full first page stored (if it could), for lean pages next."""
        if ctx.viewer.id is None or self.weights.head_minutes <= 0:
            return
        for root in bound.statement.roots:
            source = getattr(root, "source", None)
            if isinstance(source, shape.FeedStart) and not (source.store or source.lean):
                head = bound.values[slot_name(source.slot, "head")]
                until = now + timedelta(minutes=self.weights.head_minutes)
                self.heads.stored(ctx.viewer.id, head, until)

    async def _run(self, bound: Bound, ctx: Context, *, primary: bool = False) -> list[Any]:
        if not bound.statement.roots:
            return []
        compiled = self.statements.get(bound.statement)
        rows = await ctx.db.fetch(
            compiled.sql,
            *compiled.arguments(bound.values),
            planning=_planning(bound.statement),
            primary=primary or _needs_primary(bound.statement),
        )
        if bound.statement.checks_token:
            if not rows[0][1]:
                raise TokenMoved
            ctx.token_check = None  # confirmed, as of this statement
        answer: list[Any] = orjson.loads(rows[0][0])
        return answer

    # --- single fields, for strawberry ---------------------------------------------------

    async def field(self, info: Any) -> Any:
        """The value of the root field `info` resolves, compiled from its selection."""
        raw = info._raw_info
        root, _ = self.planner.field(
            raw.parent_type, list(raw.field_nodes), raw.fragments, variables_of(raw)
        )
        plan = OperationPlan((root,), 0)
        ctx: Context = info.context
        answer = await self._operation(plan, variables_of(raw), ctx)
        if answer.errors:
            raise answer.errors[0].original_error or answer.errors[0]
        assert answer.data is not None
        from schema.compiled import adapt

        return adapt(answer.data[root.key], raw.return_type)

    async def entity(
        self, info: Any, type_name: str, pk: int, *, viewer: Viewer | None = None
    ) -> Any:
        """The object `pk` of `type_name` for the selection of the field `info` resolves
        (what a mutation returns), as `viewer` (the context's viewer by default) sees it."""
        raw = info._raw_info
        plan, slots = self.planner.object(
            type_name, list(raw.field_nodes), raw.fragments, variables_of(raw)
        )
        ctx: Context = info.context
        if viewer is not None and viewer != ctx.viewer:
            ctx = replace(ctx, viewer=viewer)
        value = await self._entity(plan, slots, pk, variables_of(raw), ctx)
        from schema.compiled import adapt

        return adapt(value, raw.return_type)

    async def _entity(
        self, plan: ObjectPlan, slot: int, pk: int, variables: VariableValues, ctx: Context
    ) -> Any:
        now = datetime.now(UTC)
        binder = Binder(self.schema, ctx, variables, now)
        obj = binder.obj(plan)
        binder.values[f"s{slot}_ids"] = [pk]
        bound = Bound(
            shape.Statement(viewer_kind(ctx), (shape.Lookup("entity", slot, By.IDS, obj),)),
            binder.values,
            binder.pages,
            binder.errors,
        )
        # What a write returns is read where it was written.
        answer = await self._run(bound, ctx, primary=True)
        assembler = Assembler(ctx, bound, now)
        found = assembler.object(plan, answer[0][0], ["entity"])
        if assembler.errors:
            error = assembler.errors[0]
            raise error.original_error or error
        if found is INVALID or found is None:
            raise LookupError(f"{plan.type_name} {pk} is not visible to its writer")
        return found

    # --- live events (execution/broadcast.py) --------------------------------------------

    async def audience(self, db: Database, content_id: int, members: list[Any]) -> "Audience":
        """Who of `members` muted the content, its tags, and what their answers depend on."""
        shareable = [m for m in members if not m.personal]
        reacted = any(uses_audience(p, "viewer_has_reacted") for m in shareable for p in m.plans)
        affinities = any(uses_audience(p, "tags") for m in shareable for p in m.plans)
        key = (reacted, affinities)
        compiled = self._audiences.get(key)
        if compiled is None:
            compiled = self._audiences[key] = audience_statement(
                self.weights, reacted=reacted, affinities=affinities
            )
        viewers = sorted({m.viewer_id for m in members if m.viewer_id is not None})
        values = {"content": content_id, "viewers": viewers, "now": datetime.now(UTC)}
        # Planned for each event's values: a generic plan, which Postgres may pick after
        # five executions, cost 550 ms instead of 40 for 5,000 viewers of tagged content.
        rows = await db.fetch(
            compiled.sql, *compiled.arguments(values), planning=Planning.CUSTOM, primary=True
        )
        return Audience(orjson.loads(rows[0][0]), reacted, affinities)

    async def payloads(
        self,
        ctx: Context,
        plan: ObjectPlan,
        variables: VariableValues,
        kind: shape.ViewerKind,
        type_name: str,
        pk: int,
        viewers: list[int | None],
    ) -> Payloads:
        """The object `pk` of `type_name` built with `plan` for each of `viewers` (all of
        one kind), in one statement; None for a viewer who may not see it."""
        now = datetime.now(UTC)
        binder = Binder(self.schema, ctx, variables, now)
        slot = _PAYLOAD_SLOT
        obj = binder.obj(plan)
        binder.values[f"s{slot}_id"] = pk
        binder.values["viewers"] = viewers
        statement = shape.Statement(
            kind, (shape.Lookup("payload", slot, By.ID, obj),), per_viewer=True
        )
        bound = Bound(statement, binder.values, binder.pages, binder.errors)
        compiled = self.statements.get(statement)
        # An event is answered from where it was written, not a replica that may lag it.
        rows = await ctx.db.fetch(compiled.sql, *compiled.arguments(bound.values), primary=True)
        found: Payloads = {}
        for viewer_id, (value,) in orjson.loads(rows[0][0]):
            assembled = Assembler(ctx, bound, now).object(plan, value, ["payload"])
            found[viewer_id] = None if assembled is INVALID else assembled
        return found


class Audience:
    """db/reads/audience.py's answer for one event."""

    def __init__(self, answer: dict[str, Any], reacted: bool, affinities: bool) -> None:
        self.author: int | None = answer["author"]
        self.tags = frozenset(answer["tags"])
        self._muted: set[int] = set()
        self._values: dict[int, Hashable] = {}
        for row in answer["viewers"]:
            viewer_id, muted, *rest = row
            if muted:
                self._muted.add(viewer_id)
            self._values[viewer_id] = _frozen(rest)

    def muted(self, viewer_id: int) -> bool:
        return viewer_id in self._muted

    def key(self, member: Any) -> Hashable:
        """Members with equal keys get equal answers: the same kind of viewer (and
        whether they wrote it), and equal values for what the answer depends on; or,
        for documents that depend on more, the viewer themself."""
        if member.personal:
            return ("viewer", member.viewer_id)
        if member.viewer_id is None:
            return (member.kind,)
        own = member.viewer_id == self.author
        return (member.kind, own, self._values.get(member.viewer_id))


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value  # type: ignore[no-any-return]


def _failed(plan: OperationPlan, error: Exception) -> Answer:
    """Every root field failed with `error`."""
    errors: list[GraphQLError] = []
    data: dict[str, Any] = {}
    required = False
    for root in plan.roots:
        if isinstance(root, RootTypename):
            data[root.key] = "Query"
            continue
        errors.append(GraphQLError(str(error), path=[root.key], original_error=error))
        data[root.key] = None
        required = required or not root.nullable
    return Answer(None if required else data, errors)


# Filters whose selectivity depends on their value (docs/performance.md).
NARROWING = frozenset({"author_id", "author_handle", "tags"})


def _needs_primary(statement: shape.Statement) -> bool:
    """Feeds and searches write as they read (a walk, a feed's state) and read the
    stored feeds, which are UNLOGGED and so not on replicas."""
    return any(
        isinstance(root, shape.Paged)
        and isinstance(root.source, shape.FeedStart | shape.SearchStart | shape.WalkPage)
        for root in statement.roots
    )


def _planning(statement: shape.Statement) -> Planning:
    """How Postgres plans the statement (db/read_pool.py): searches for each query's
    values; a list of content narrowed by an author or tags as Postgres chooses (how
    many rows match, and so the best plan, depends on which author or tag); everything
    else once per connection, whatever its values: lookups by key, feeds, walks, and
    lists whose rows are read in index order (planning them again for every request
    cost as much as running them, docs/performance.md)."""
    planning = Planning.GENERIC
    for root in statement.roots:
        if not isinstance(root, shape.Paged):
            continue
        source = root.source
        if isinstance(source, shape.SearchStart) or (
            isinstance(source, shape.WalkPage) and source.search_count
        ):
            return Planning.CUSTOM
        if isinstance(source, shape.ContentList) and source.filters & NARROWING:
            planning = Planning.CHOSEN
    return planning
