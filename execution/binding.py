"""A plan bound to one request: the arguments of every list and lookup checked (by the
rules in resolvers/), the statement those decisions make (db/reads/shape.py), the values
of its parameters, and what assembling the answer needs to know per list (how to sign
its cursors). An argument a client got wrong becomes an error at that field; the field
is left out of the statement."""

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from db.reads import shape
from db.reads.sources import content_filters, content_list_values, page_values, slot_name
from execution.plan import (
    Child,
    Connection,
    Leaf,
    Lookup,
    ObjectPlan,
    OperationPlan,
    Root,
    RootTypename,
    Typename,
)
from resolvers import feed as walks
from resolvers import policy, search, validation
from resolvers.content import ContentQuery, check_list_request
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, GatewayError, require_viewer_id
from resolvers.ids import decode_id
from resolvers.paging import check_first

_BACKREF = "strawberry-definition"


@dataclass(slots=True)
class Page:
    """What assembling one list needs: how to sign its cursors (`kind`, and for walks
    the walk they belong to), its size, and whether it was asked for with `after`."""

    kind: str
    first: int
    after: bool
    walk: str | None = None
    feed_start: bool = False


@dataclass(slots=True)
class Bound:
    statement: shape.Statement
    values: dict[str, Any]
    pages: dict[int, Page] = field(default_factory=dict)
    # Per slot: the error its field answers with (the field is not in the statement).
    errors: dict[int, GatewayError] = field(default_factory=dict)
    # Per root: its index in the statement's answer, or None when it is answered
    # without SQL (null, or an error in `errors`); and for lookups, the type found.
    positions: list[int | None] = field(default_factory=list)
    found_types: dict[int, str] = field(default_factory=dict)


class FeedHeads:
    """Which viewers' feeds this process last saw store a head (db/reads/walks.py), of
    what size and until when: their first pages are asked lean, which reads only that
    head. Only a guess at which statement to send: a lean page whose head is gone (a
    fan-out cleared it, another process stored a smaller one) says so, and is asked
    again in full. Bounded: the least recently stored are forgotten."""

    def __init__(self, size: int = 65_536) -> None:
        self.size = size
        self._heads: OrderedDict[int, tuple[datetime, int]] = OrderedDict()

    def serves(self, viewer_id: int | None, head: int, now: datetime) -> bool:
        found = self._heads.get(viewer_id) if viewer_id is not None else None
        return found is not None and found[0] > now and found[1] >= head

    def stored(self, viewer_id: int, head: int, until: datetime) -> None:
        self._heads[viewer_id] = (until, head)
        self._heads.move_to_end(viewer_id)
        if len(self._heads) > self.size:
            self._heads.popitem(last=False)

    def gone(self, viewer_id: int) -> None:
        self._heads.pop(viewer_id, None)


def viewer_kind(ctx: Context) -> shape.ViewerKind:
    if ctx.viewer.is_admin:
        return shape.ViewerKind.ADMIN
    return shape.ViewerKind.MEMBER if ctx.viewer.signed_in else shape.ViewerKind.ANONYMOUS


class Binder:
    def __init__(
        self,
        schema: Any,
        ctx: Context,
        variables: VariableValues,
        now: datetime,
        *,
        heads: "FeedHeads | None" = None,
    ) -> None:
        self.heads = heads
        self.schema = schema
        self.ctx = ctx
        self.variables = variables
        self.now = now
        access = policy.content_filter(ctx.viewer)
        self.values: dict[str, Any] = {"viewer": ctx.viewer.id, "now": now, **access.values()}
        if ctx.token_check is not None:
            self.values |= {"token_version": ctx.token_check.token_version, "role": ctx.viewer.role}
        self.pages: dict[int, Page] = {}
        self.errors: dict[int, GatewayError] = {}
        self.found_types: dict[int, str] = {}

    # --- arguments ----------------------------------------------------------------------

    def arguments(self, plan: Connection | Lookup) -> dict[str, Any]:
        """The field's arguments as its resolver's Python parameters."""
        raw = get_argument_values(plan.definition, plan.node, self.variables)
        strawberry_field = plan.definition.extensions[_BACKREF]
        return convert_arguments(
            raw,
            strawberry_field.arguments,
            scalar_registry=self.schema.schema_converter.scalar_registry,
            config=self.schema.config,
        )

    # --- plans --------------------------------------------------------------------------

    def operation(self, plan: OperationPlan) -> Bound:
        roots: list[shape.Root] = []
        positions: list[int | None] = []
        for root in plan.roots:
            found = self.root(root)
            positions.append(None if found is None else len(roots))
            if found is not None:
                roots.append(found)
        statement = shape.Statement(
            viewer_kind(self.ctx), tuple(roots), checks_token=self.ctx.token_check is not None
        )
        return Bound(statement, self.values, self.pages, self.errors, positions, self.found_types)

    def root(self, root: Root) -> shape.Root | None:
        if isinstance(root, RootTypename):
            return None
        try:
            if isinstance(root, Connection):
                return self.connection(root)
            return self.lookup(root)
        except GatewayError as error:
            self.errors[root.slot] = error
            return None

    def obj(self, plan: ObjectPlan) -> shape.Obj:
        members: list[shape.Member] = []
        for member in plan.members:
            if isinstance(member, Leaf):
                members.append(shape.Scalar(member.key, member.field))
            elif isinstance(member, Typename):
                members.append(shape.Constant(member.key, member.value))
            elif isinstance(member, Child):
                members.append(shape.Related(member.key, member.relation, self.obj(member.obj)))
            else:
                try:
                    members.append(self.connection(member))
                except GatewayError as error:
                    self.errors[member.slot] = error
        return shape.Obj(plan.entity, tuple(members))

    def lookup(self, plan: Lookup) -> shape.Lookup | None:
        args = self.arguments(plan)
        slot = plan.slot
        if plan.name == "viewer":
            if self.ctx.viewer.id is None:
                return None
            return self._found(plan, "User", shape.By.VIEWER)
        if plan.name == "webhooks":
            if not policy.can_manage_webhooks(self.ctx.viewer):
                require_viewer_id(self.ctx.viewer.id, "see webhooks")
                raise Forbidden("Only an ADMIN may see webhooks.")
            return self._found(plan, "Webhook", shape.By.ALL)
        if plan.name == "user":
            self.values[slot_name(slot, "handle")] = validation.normalize_handle(args["handle"])
            return self._found(plan, "User", shape.By.HANDLE)
        type_name, pk = decode_id(str(args["id"]))
        wanted = next(iter(plan.objects)) if plan.name == "content" else type_name
        if pk is None or type_name != wanted or type_name not in plan.objects:
            return None  # an id of another type, or not spelled as issued, names nothing
        if type_name == "Notification" and self.ctx.viewer.id is None:
            return None
        self.values[slot_name(slot, "id")] = pk
        return self._found(plan, type_name, shape.By.ID)

    def _found(self, plan: Lookup, type_name: str, by: shape.By) -> shape.Lookup:
        self.found_types[plan.slot] = type_name
        return shape.Lookup(plan.key, plan.slot, by, self.obj(plan.objects[type_name]))

    def connection(self, plan: Connection) -> shape.Paged:
        args = self.arguments(plan)
        binder = getattr(self, f"_{plan.kind}")
        source = binder(plan, args)
        node = self.obj(plan.item) if plan.item is not None else None
        return shape.Paged(plan.key, source, node, count=plan.total)

    # --- lists --------------------------------------------------------------------------

    def _contents(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        filter_ = _given(args.get("filter"))
        query = ContentQuery()
        if filter_ is not None:
            handle, tags = _given(filter_.author_handle), _given(filter_.tags)
            status, language = _given(filter_.status), _given(filter_.language)
            query = ContentQuery(
                author_handle=validation.normalize_handle(handle) if handle else None,
                tag_names=tuple(tags) if tags else None,
                status=status.value if status else None,
                language=language.strip().lower() if language else None,
            )
        order = shape.Order((_given(args.get("order_by")) or shape.Order.NEWEST).name)
        request = check_list_request(
            self.ctx,
            query=query,
            order=order,
            first=_first(args, 20),
            after=_given(args.get("after")),
        )
        q = request.query
        self.values.update(
            content_list_values(
                plan.slot,
                first=request.limit,
                after=request.position,
                author_handle=q.author_handle,
                tags=list(q.tag_names) if q.tag_names else None,
                status=q.status,
                language=q.language,
            )
        )
        self.pages[plan.slot] = Page(request.kind, request.limit, request.position is not None)
        filters = content_filters(
            author_handle=q.author_handle, tags=q.tag_names, status=q.status, language=q.language
        )
        return shape.ContentList(plan.slot, order, filters, request.position is not None)

    def _user_contents(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        request = check_list_request(
            self.ctx,
            query=ContentQuery(),
            order=shape.Order.NEWEST,
            first=_first(args, 20),
            after=_given(args.get("after")),
        )
        self.values.update(
            content_list_values(plan.slot, first=request.limit, after=request.position)
        )
        self.pages[plan.slot] = Page(request.kind, request.limit, request.position is not None)
        return shape.AuthorContents(plan.slot, request.position is not None)

    def _tags(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        limit = check_first(_first(args, 50), self.ctx.max_page_size)
        after = _given(args.get("after"))
        self.values.update(page_values(plan.slot, limit))
        if after is not None:
            values = self.ctx.cursors.decode(after, "tags")
            if len(values) != 1 or not isinstance(values[0], str):
                raise BadUserInput("`after` is not a cursor of this list")
            self.values[slot_name(plan.slot, "after_name")] = values[0]
        self.pages[plan.slot] = Page("tags", limit, after is not None)
        return shape.TagList(plan.slot, after is not None)

    def _notifications(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        require_viewer_id(self.ctx.viewer.id, "read notifications")
        limit = check_first(_first(args, 20), self.ctx.max_page_size)
        unread = bool(_given(args.get("unread_only")))
        kind = f"notifications:{'unread' if unread else 'all'}"
        after = _given(args.get("after"))
        self.values.update(page_values(plan.slot, limit))
        if after is not None:
            values = self.ctx.cursors.decode(after, kind)
            if len(values) != 1 or not isinstance(values[0], int):
                raise BadUserInput("`after` is not a cursor of this list")
            self.values[slot_name(plan.slot, "after_id")] = values[0]
        self.pages[plan.slot] = Page(kind, limit, after is not None)
        return shape.NotificationList(plan.slot, unread, after is not None)

    # --- walks --------------------------------------------------------------------------

    def _walk_page(self, plan: Connection, kind: str, after: str, limit: int) -> tuple[str, bool]:
        walk_id, position = walks.decode_walk_cursor(self.ctx, after, kind)
        self.values.update(page_values(plan.slot, limit))
        self.values[slot_name(plan.slot, "walk")] = walk_id
        self.values[slot_name(plan.slot, "after")] = position
        self.pages[plan.slot] = Page(kind, limit, True, walk=walk_id)
        return walk_id, walks.is_shared(walk_id)

    def _feed(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        limit = check_first(_first(args, 20), self.ctx.max_page_size)
        after = _given(args.get("after"))
        reasons = plan.reasons
        if after is not None:
            _, shared = self._walk_page(plan, walks.FEED_KIND, after, limit)
            return shape.WalkPage(plan.slot, feed=True, shared=shared, reasons=reasons)
        signed_in = self.ctx.viewer.signed_in
        audience = "members" if signed_in else "anonymous"
        self.values.update(page_values(plan.slot, limit))
        self.values[slot_name(plan.slot, "bucket")] = walks.bucket(audience, self.now)
        self.values[slot_name(plan.slot, "head")] = limit + self.ctx.ranking.live_margin
        store = plan.cursors and signed_in and limit > 0
        walk = walks.new_walk(walks.FEED_KIND) if store else None
        if not signed_in:
            walk = self.values[slot_name(plan.slot, "bucket")]
        if walk is not None:
            self.values[slot_name(plan.slot, "walk")] = walk
        self.pages[plan.slot] = Page(walks.FEED_KIND, limit, False, walk=walk, feed_start=signed_in)
        head = limit + self.ctx.ranking.live_margin
        lean = (
            self.heads is not None
            and signed_in
            and not store
            and self.heads.serves(self.ctx.viewer.id, head, self.now)
        )
        return shape.FeedStart(plan.slot, signed_in, store, reasons, lean=lean)

    def _search(self, plan: Connection, args: dict[str, Any]) -> shape.Source:
        text = search.check_query(args["query"])
        limit = check_first(_first(args, 20), self.ctx.max_page_size)
        kind = search.kind_of(text)
        after = _given(args.get("after"))
        if after is not None:
            self._walk_page(plan, kind, after, limit)
            self.values[slot_name(plan.slot, "query")] = text
            return shape.WalkPage(plan.slot, feed=False, search_count=plan.total)
        store = plan.cursors and limit > 0
        walk = walks.new_walk(kind) if store else None
        self.values.update(page_values(plan.slot, limit))
        self.values[slot_name(plan.slot, "query")] = text
        if walk is not None:
            self.values[slot_name(plan.slot, "walk")] = walk
        self.pages[plan.slot] = Page(kind, limit, False, walk=walk)
        return shape.SearchStart(plan.slot, store, plan.total)


def _given(value: Any) -> Any:
    """UNSET (left out) and null both mean "not given"."""
    from strawberry import UNSET

    return None if value is UNSET else value


def _first(args: dict[str, Any], default: int) -> int:
    first = _given(args.get("first"))
    return default if first is None else int(first)
