"""The response, from the statement's JSON: Postgres built every object already; what
is left is what only Python does (signing cursors, wording a feed item's reasons,
rendering Markdown), the shape of connections (edges, pageInfo), and GraphQL's rules
for errors: an error at a field makes it null, and a null where the type forbids one
makes its parent null, up to the nearest field that may be."""

from datetime import datetime
from typing import Any

from graphql import GraphQLError

from execution.binding import Bound
from execution.plan import Child, Connection, Leaf, ObjectPlan, OperationPlan, Root, RootTypename
from resolvers import ranking
from resolvers.context import Context
from resolvers.errors import BadUserInput, GatewayError
from resolvers.feed import WALK_EXPIRED


class _Invalid:
    """A null where the type forbids one: the parent must become null instead."""


INVALID = _Invalid()
Path = list[str | int]
# Keyset values in front of each row's item, per kind of list.
KEYS = {"contents": 2, "user_contents": 2, "tags": 1, "notifications": 1, "feed": 3, "search": 3}


class Assembler:
    def __init__(self, ctx: Context, bound: Bound, now: datetime) -> None:
        self.ctx = ctx
        self.bound = bound
        self.now = now
        self.errors: list[GraphQLError] = []
        # A signed-in feed that must be rebuilt before its first page is read.
        self.stale_feed = False
        # A lean first page whose stored head or shared list was not there (shape.py).
        self.unserved_feed = False
        # A lean first page found its viewer's last read or feed old enough to write.
        self.touch_feed = False
        # What the statement failed with, if it did: every field it served fails with it.
        self.failure: Exception | None = None

    def error(self, error: GatewayError, path: Path) -> None:
        self.errors.append(
            GraphQLError(
                error.message, path=list(path), extensions=error.extensions, original_error=error
            )
        )

    # --- roots --------------------------------------------------------------------------

    def operation(self, plan: OperationPlan, answer: list[Any]) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        for root, position in zip(plan.roots, self.bound.positions, strict=True):
            raw = None if position is None or self.failure is not None else answer[position]
            value = self.root(root, raw, position is not None)
            if value is INVALID:
                return None
            data[root.key] = value
        return data

    def root(self, root: Root, raw: Any, served: bool) -> Any:
        if isinstance(root, RootTypename):
            return "Query"
        path: Path = [root.key]
        error = self.bound.errors.get(root.slot)
        if error is not None:
            self.error(error, path)
            return None if root.nullable else INVALID
        if served and self.failure is not None:
            self.errors.append(
                GraphQLError(str(self.failure), path=path, original_error=self.failure)
            )
            return None if root.nullable else INVALID
        if isinstance(root, Connection):
            return self.connection(root, raw, path)
        type_name = self.bound.found_types.get(root.slot)
        if raw is None or type_name is None:
            return None
        if isinstance(raw, list):
            items = [
                self.object(root.objects[type_name], item, [*path, i]) for i, item in enumerate(raw)
            ]
            if any(item is INVALID for item in items):
                return None if root.nullable else INVALID
            return items
        value = self.object(root.objects[type_name], raw, path)
        return None if value is INVALID else value

    # --- objects ------------------------------------------------------------------------

    def object(self, plan: ObjectPlan, value: Any, path: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, list):  # more fields than one JSON object takes
            merged: dict[str, Any] = {}
            for part in value:
                merged.update(part)
            value = merged
        if plan.pure:
            return value
        out: dict[str, Any] = {}
        for member in plan.members:
            key = member.key
            if isinstance(member, Leaf):
                found = value[key]
                derive = member.derive
                out[key] = derive(found, self.ctx) if derive and found is not None else found
            elif isinstance(member, Child):
                found = self.child(member, value[key], [*path, key])
                if found is INVALID:
                    return INVALID
                out[key] = found
            elif isinstance(member, Connection):
                found = self.connection(member, value.get(key), [*path, key])
                if found is INVALID:
                    return INVALID
                out[key] = found
            else:
                out[key] = value[key]
        return out

    def child(self, member: Child, value: Any, path: Path) -> Any:
        if member.obj.pure or value is None:
            return value
        if not member.many:
            found = self.object(member.obj, value, path)
            return None if found is INVALID and member.nullable else found
        items = [self.object(member.obj, item, [*path, i]) for i, item in enumerate(value)]
        if any(item is INVALID for item in items):
            return None if member.nullable else INVALID
        return items

    # --- connections --------------------------------------------------------------------

    def connection(self, plan: Connection, raw: Any, path: Path) -> Any:
        error = self.bound.errors.get(plan.slot)
        if error is None and raw is not None and raw.get("found") is False:
            error = BadUserInput(WALK_EXPIRED)
        if error is not None:
            self.error(error, path)
            return None if plan.nullable else INVALID
        page = self.bound.pages[plan.slot]
        if raw.get("fresh") is False and page.first > 0:
            self.stale_feed = True
        if raw.get("served") is False:
            self.unserved_feed = True
        if raw.get("touch") is True:
            self.touch_feed = True
        rows: list[list[Any]] = raw["rows"]
        keys = KEYS[plan.kind]
        walk = plan.kind in ("feed", "search")
        cursors: list[str] = []
        if plan.cursors:
            encode = self.ctx.cursors.encode
            if walk:
                cursors = [encode(page.kind, (page.walk, row[0])) for row in rows]
            else:
                cursors = [encode(page.kind, tuple(row[:keys])) for row in rows]
        out: dict[str, Any] = {}
        for key, name in plan.selections:
            if name == "edges":
                edges = self.edges(plan, rows, cursors, keys, [*path, key])
                if edges is INVALID:
                    return None if plan.nullable else INVALID
                out[key] = edges
            elif name == "pageInfo":
                out[key] = self.page_info(plan, page.after, bool(raw["more"]), cursors)
            elif name == "totalCount":
                out[key] = raw["total"]
            else:
                out[key] = plan.type_name
        return out

    def edges(
        self, plan: Connection, rows: list[list[Any]], cursors: list[str], keys: int, path: Path
    ) -> Any:
        item = plan.item
        edges: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            edge: dict[str, Any] = {}
            for key, name in plan.edge:
                if name == "node":
                    assert item is not None
                    node = row[keys] if item.pure else self.object(item, row[keys], [*path, i, key])
                    if node is INVALID:
                        return INVALID
                    edge[key] = node
                elif name == "cursor":
                    edge[key] = cursors[i]
                elif name == "score":
                    edge[key] = round(float(row[1]), 6)
                elif name == "reasons":
                    edge[key] = ranking.reasons(ranking.Facts.of(row[2]), self.now)
                else:
                    edge[key] = plan.edge_type
            edges.append(edge)
        return edges

    @staticmethod
    def page_info(plan: Connection, after: bool, more: bool, cursors: list[str]) -> dict[str, Any]:
        values = {
            "hasNextPage": more,
            "hasPreviousPage": after,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
            "__typename": "PageInfo",
        }
        return {key: values[name] for key, name in plan.page_info}
