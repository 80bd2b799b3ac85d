"""The one read builder: a `Statement` (shape.py) becomes one SQL statement that returns
the whole answer as one JSON text. Statements are written with SQLAlchemy Core, compiled
once per distinct shape to asyncpg's dialect, and kept; each request then only supplies
its parameters by name.

The JSON is an array with one value per root: an object for a lookup (null when there is
none the viewer may see), and for a page {"rows": [[key..., item], ...], "more": bool,
"total": n} where each row's keys are its keyset position."""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.elements import ColumnElement

from db.ranking import RankingWeights
from db.reads import sources, walks
from db.reads.fields import ENTITIES, USERS, Build, aggregate
from db.reads.shape import (
    AuthorContents,
    By,
    Constant,
    ContentList,
    FeedStart,
    NotificationList,
    Obj,
    Paged,
    Related,
    Root,
    Scalar,
    SearchStart,
    Statement,
    TagList,
    WalkPage,
)
from db.reads.sql import BIGINTS, INT, TEXT, json_object, lit, param

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement's text with $n parameters, the name of each in order, and the values
    of the constants SQLAlchemy chose to pass as parameters."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        """The statement's arguments in order; KeyError names a value nobody supplied."""
        constants = self.constants
        return [values[name] if name in values else constants[name] for name in self.names]


def object_json(obj: Obj, row: Any, b: Build) -> ColumnElement[Any]:
    entity = ENTITIES[obj.entity]
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for member in obj.members:
        if isinstance(member, Scalar):
            value = entity.fields[member.field].sql(row, b)
        elif isinstance(member, Constant):
            value = lit(member.value)
        elif isinstance(member, Related):
            relation = entity.relations[member.relation]
            child, source, conditions, order = relation.rows(row, b)
            nested = object_json(member.obj, child, b)
            select = sa.select(aggregate(nested, order) if relation.many else nested)
            value = select.select_from(source).where(*conditions).scalar_subquery()
        else:
            value = page_json(member, b, parent=row)
        pairs.append((member.key, value))
    return json_object(pairs)


def _rows(paged: Paged, b: Build, parent: Any) -> sources.Rows:
    source = paged.source
    if isinstance(source, ContentList):
        return sources.content_list(source, b)
    if isinstance(source, AuthorContents):
        return sources.author_contents(source, b, parent)
    if isinstance(source, TagList):
        return sources.tag_list(source, b)
    if isinstance(source, NotificationList):
        return sources.notification_list(source, b)
    if isinstance(source, FeedStart):
        return walks.feed_start(source, b)
    if isinstance(source, SearchStart):
        return walks.search_start(source, b)
    assert isinstance(source, WalkPage)
    return walks.walk_page(source, b)


def page_json(paged: Paged, b: Build, *, parent: Any = None) -> ColumnElement[Any]:
    rows = _rows(paged, b, parent)
    select, count = rows.select, rows.count
    if parent is not None:
        # The page is read from a derived table, which SQLAlchemy never correlates on
        # its own: it would add the parent's table to the page's FROM, and a user's
        # contents would be everybody's.
        select = select.correlate(parent)
        count = count.correlate(parent) if count is not None else None
    page = select.subquery()
    numbered = sa.select(*page.c, sa.func.row_number().over(order_by=rows.order(page)).label("rn"))
    p = numbered.subquery()
    parts = list(rows.keys(p))
    if paged.node is not None:
        parts.append(object_json(paged.node, p, b))
    first = sources.slot_param(paged.source.slot, "first", INT)
    listed = sa.func.json_agg(aggregate_order_by(sa.func.json_build_array(*parts), p.c.rn))
    pairs = [
        ("rows", sa.func.coalesce(listed.filter(p.c.rn <= first), sa.text("'[]'::json"))),
        ("more", sa.func.coalesce(sa.func.bool_or(p.c.rn > first), sa.false())),
    ]
    if paged.count and count is not None:
        pairs.append(("total", count.scalar_subquery()))
    pairs.extend(rows.extra)
    return sa.select(json_object(pairs)).select_from(p).scalar_subquery()


def root_json(root: Root, b: Build) -> ColumnElement[Any]:
    if isinstance(root, Paged):
        return page_json(root, b)
    if root.by is By.IDS:
        ids, row, conditions = sources.lookup_many(root.obj.entity, root.slot, b)
        found = sa.case((row.c.id.is_(None), sa.null()), else_=object_json(root.obj, row, b))
        listed = sa.func.json_agg(aggregate_order_by(found, ids.c.position))
        return (
            sa.select(sa.func.coalesce(listed, sa.text("'[]'::json")))
            .select_from(ids.outerjoin(row, sa.and_(*conditions)))
            .scalar_subquery()
        )
    row, conditions = sources.lookup(root, b)
    if root.by is By.ALL:
        listed = sa.func.json_agg(aggregate_order_by(object_json(root.obj, row, b), row.c.id))
        return (
            sa.select(sa.func.coalesce(listed, sa.text("'[]'::json")))
            .select_from(row)
            .where(*conditions)
            .scalar_subquery()
        )
    return sa.select(object_json(root.obj, row, b)).where(*conditions).scalar_subquery()


def build(statement: Statement, weights: RankingWeights) -> Any:
    if statement.per_viewer:
        viewers = (
            sa.func.unnest(param("viewers", BIGINTS)).table_valued("id").render_derived(name="v")
        )
        # By name: SQLAlchemy correlates a column only to the select right around it, and
        # the viewer is read at every depth of the statement.
        b = Build(statement.viewer, weights, viewer=sa.literal_column("v.id", sa.BigInteger))
        answers = sa.func.json_build_array(*(root_json(root, b) for root in statement.roots))
        by_viewer = sa.func.json_agg(sa.func.json_build_array(viewers.c.id, answers))
        select = sa.select(sa.cast(sa.func.coalesce(by_viewer, sa.text("'[]'::json")), sa.Text))
        select = select.select_from(viewers)
    else:
        b = Build(statement.viewer, weights)
        values = [root_json(root, b) for root in statement.roots]
        select = sa.select(sa.cast(sa.func.json_build_array(*values), sa.Text))
        if statement.checks_token:
            select = select.add_columns(token_holds(b.viewer))
    return select.add_cte(*b.side_effects) if b.side_effects else select


def token_holds(viewer: Any) -> ColumnElement[bool]:
    """Whether the viewer still has the token version and role the statement was bound
    for: false once they logged out, changed their password or had their role changed
    (or were deleted) since this process last confirmed them."""
    return sa.exists(
        sa.select(lit(1)).where(
            USERS.c.id == viewer,
            USERS.c.token_version == param("token_version", INT),
            USERS.c.role == param("role", TEXT),
        )
    )


def compile_select(select: Any) -> Compiled:
    """Any read statement, compiled for asyncpg with its parameters by name."""
    compiled = select.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    required = {name for bind, name in compiled.bind_names.items() if bind.required}
    constants = {name: value for name, value in compiled.params.items() if name not in required}
    return Compiled(compiled.string, names, constants)


def compile_statement(statement: Statement, weights: RankingWeights) -> Compiled:
    return compile_select(build(statement, weights))


class StatementCache:
    """Compiled statements by shape, the least recently used forgotten. Building and
    compiling a statement costs milliseconds; a request's parameters, microseconds."""

    def __init__(self, weights: RankingWeights, maxsize: int = 1000) -> None:
        self.weights = weights
        self.maxsize = maxsize
        self._compiled: OrderedDict[Statement, Compiled] = OrderedDict()

    def get(self, statement: Statement) -> Compiled:
        found = self._compiled.get(statement)
        if found is not None:
            self._compiled.move_to_end(statement)
            return found
        found = self._compiled[statement] = compile_statement(statement, self.weights)
        if len(self._compiled) > self.maxsize:
            self._compiled.popitem(last=False)
        return found
