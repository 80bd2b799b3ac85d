"""Content as JSON built by Postgres, for the compiled read path (resolvers/compiled.py).

A `Shape` says which fields of an entity to put into a JSON object, under which keys
and in which order; Postgres builds the objects (with the author and tags nested) in the
same statement that selects the rows, so no field is resolved one by one in Python.
Every value comes out exactly as the GraphQL types write it: ids as resolvers/ids.py
encodes them, timestamps as Python's isoformat(), tags in the order of
resolvers/content.py `tags_of`.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

import orjson

from db.queries.access import ContentAccess, SqlParams, access_sql
from db.queries.contents import ContentKey, ContentOrder, ContentQuery, list_sql
from db.session import Database

# json_build_object takes at most 100 arguments: 50 key/value pairs.
MAX_FIELDS = 50
_KEY = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


@dataclass(frozen=True, slots=True)
class Shape:
    """A JSON object: (key, field, nested) triples in order. `field` names one of the
    entity's scalars (CONTENT_FIELDS, USER_FIELDS, TAG_FIELDS, or a viewer-dependent
    one) with `nested` None, or a relation (RELATIONS) with `nested` the Shape of what
    it points to."""

    entity: str
    fields: tuple[tuple[str, str, Optional["Shape"]], ...]


@dataclass(frozen=True, slots=True)
class Viewing:
    """Whose answer is built: what the viewer-dependent fields need."""

    viewer_id: int | None
    now: datetime
    habit_half_life_days: float
    habit_saturation: float


def _gid(type_name: str, pk: str) -> str:
    """resolvers/ids.py `encode_id`: base64url of "Type:pk" without padding (ids are
    short, so Postgres's base64 never wraps the line)."""
    return (
        f"rtrim(translate(encode(convert_to('{type_name}:' || {pk}, 'UTF8'), 'base64'),"
        " '+/', '-_'), '=')"
    )


def _iso(ts: str) -> str:
    """Python's isoformat() of a timestamptz read as UTC: microseconds only if any."""
    return (
        f"to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN extract(microseconds FROM {ts})::bigint % 1000000 <> 0"
        f" THEN to_char({ts} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"
    )


CONTENT_FIELDS: dict[str, str] = {
    "id": _gid("Content", "{c}.id"),
    "title": "{c}.title",
    "summary": "{c}.summary",
    "body": "{c}.body",
    "status": "{c}.status",
    "visibility": "{c}.visibility",
    "language": "{c}.language",
    "reaction_count": "{c}.reaction_count",
    "created_at": _iso("{c}.created_at"),
    "updated_at": _iso("{c}.updated_at"),
    "published_at": _iso("{c}.published_at"),
    "typename": "'Content'",
}
USER_FIELDS: dict[str, str] = {
    "id": _gid("User", "u.id"),
    "handle": "u.handle",
    "display_name": "u.display_name",
    "bio": "u.bio",
    "role": "u.role",
    "created_at": _iso("u.created_at"),
    "follower_count": "(SELECT count(*) FROM follows f WHERE f.followee_id = u.id)",
    "following_count": "(SELECT count(*) FROM follows f WHERE f.follower_id = u.id)",
    "typename": "'User'",
}
TAG_FIELDS: dict[str, str] = {
    "id": _gid("Tag", "t.id"),
    "name": "t.name",
    "typename": "'Tag'",
}
# Fields that depend on who is asking, for a signed-in viewer and for anonymous ones.
_VIEWER_FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    ("Content", "viewer_has_reacted"): (
        "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = {viewer} AND r.content_id = {c}.id)",
        "false",
    ),
    ("User", "viewer_follows"): (
        "EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = {viewer} AND f.followee_id = u.id)",
        "false",
    ),
}

# The viewer's decayed reactions per tag: db/queries/tags.py `habit_by_tag_id`.
_HABITS = """habits AS (
  SELECT ct.tag_id,
         sum(power(0.5, extract(epoch FROM ({now} - r.created_at)) / 86400.0 / {half_life}))
           AS decayed
  FROM reactions r JOIN content_tags ct ON ct.content_id = r.content_id
  WHERE r.user_id = {viewer} AND r.created_at <= {now}
    AND r.created_at > {now} - make_interval(secs => {half_life} * 8 * 86400)
  GROUP BY ct.tag_id
)"""


RELATIONS: dict[tuple[str, str], str] = {("Content", "author"): "User", ("Content", "tags"): "Tag"}
_SCALARS = {"Content": CONTENT_FIELDS, "User": USER_FIELDS, "Tag": TAG_FIELDS}


def supports(shape: Shape) -> bool:
    """Whether every field of `shape` (and of the shapes in it) can be built here."""
    if not shape.fields or len(shape.fields) > MAX_FIELDS:
        return False
    for key, field, nested in shape.fields:
        if not _KEY.fullmatch(key):
            return False  # keys are GraphQL names; anything else never reaches the SQL
        if nested is not None:
            if RELATIONS.get((shape.entity, field)) != nested.entity or not supports(nested):
                return False
        elif field not in _SCALARS[shape.entity] and (shape.entity, field) not in _VIEWER_FIELDS:
            return False
    return True


class _Builder:
    """Writes the JSON expression of a shape, adding the viewer's values to `params` as
    the fields that need them appear."""

    def __init__(self, viewing: Viewing, params: SqlParams) -> None:
        self.viewing = viewing
        self.params = params
        self._placed: dict[str, str] = {}
        self.needs_habits = False

    def _param(self, name: str, value: Any, cast: str) -> str:
        if name not in self._placed:
            self._placed[name] = self.params(value, cast)
        return self._placed[name]

    def viewer(self) -> str:
        return self._param("viewer", self.viewing.viewer_id, "bigint")

    def _value(self, entity: str, field: str, row: str) -> str:
        personal = _VIEWER_FIELDS.get((entity, field))
        if personal is None:
            return _SCALARS[entity][field].format(c=row)
        if self.viewing.viewer_id is None:
            return personal[1]
        return personal[0].format(c=row, viewer=self.viewer())

    def object(self, shape: Shape, row: str) -> str:
        pairs: list[str] = []
        for key, field, nested in shape.fields:
            if not _KEY.fullmatch(key):
                # Keys are written into the SQL: only GraphQL names may get there.
                raise ValueError(f"not a GraphQL name: {key!r}")
            if nested is not None:
                value = self.author(nested, row) if field == "author" else self.tags(nested, row)
            else:
                value = self._value(shape.entity, field, row)
            pairs.append(f"'{key}', {value}")
        return f"json_build_object({', '.join(pairs)})"

    def author(self, shape: Shape, row: str) -> str:
        return f"(SELECT {self.object(shape, 'u')} FROM users u WHERE u.id = {row}.author_id)"

    def tags(self, shape: Shape, row: str) -> str:
        if self.viewing.viewer_id is not None:
            # resolvers/content.py tags_of: explicit weight, else learned affinity
            # d / (d + saturation), highest first, then by name as Python sorts it.
            self.needs_habits = True
            saturation = self._param("saturation", self.viewing.habit_saturation, "float8")
            order = (
                "coalesce(ft.weight, CASE WHEN h.decayed > 0"
                f" THEN h.decayed / (h.decayed + {saturation}) ELSE 0 END) DESC,"
                ' t.name COLLATE "C"'
            )
            joins = (
                f" LEFT JOIN followed_tags ft ON ft.user_id = {self.viewer()} AND ft.tag_id = t.id"
                " LEFT JOIN habits h ON h.tag_id = t.id"
            )
        else:
            order, joins = "t.name", ""
        return (
            f"(SELECT coalesce(json_agg({self.object(shape, 't')} ORDER BY {order}), '[]'::json)"
            f" FROM content_tags ct JOIN tags t ON t.id = ct.tag_id{joins}"
            f" WHERE ct.content_id = {row}.id)"
        )

    def with_clause(self) -> str:
        if not self.needs_habits:
            return ""
        habits = _HABITS.format(
            viewer=self.viewer(),
            now=self._param("now", self.viewing.now, "timestamptz"),
            half_life=self._param("half_life", self.viewing.habit_half_life_days, "float8"),
        )
        return f"WITH {habits} "


@dataclass(frozen=True, slots=True)
class JsonRow:
    content_id: int
    key: tuple[Any, int]  # the keyset position, datetimes as ISO strings (as cursors hold them)
    node: dict[str, Any]


async def list_content_json(
    db: Database,
    shape: Shape,
    viewing: Viewing,
    *,
    access: ContentAccess,
    query: ContentQuery,
    order: ContentOrder,
    after: ContentKey | None,
    limit: int,
) -> list[JsonRow]:
    """db/queries/contents.py `list_contents`, each row with its JSON object: one
    statement, answering one JSON text (decoding rows costs the driver more)."""
    params = SqlParams()
    builder = _Builder(viewing, params)
    node = builder.object(shape, "c")
    page = list_sql(
        f"c.id, c.listed_at, c.reaction_count, {node} AS node",
        access=access,
        query=query,
        order=order,
        after=after,
        limit=limit,
        params=params,
    )
    popular = order is ContentOrder.POPULAR
    sort = "p.reaction_count" if popular else "p.listed_at"
    direction = "ASC" if order is ContentOrder.OLDEST else "DESC"
    key = sort if popular else _iso(sort)
    select = (
        f"SELECT coalesce(json_agg(json_build_array(p.id, {key}, p.node)"
        f" ORDER BY {sort} {direction}, p.id {direction}), '[]')::text FROM ({page}) p"
    )
    rows = await db.fetch(builder.with_clause() + select, *params.values)
    return [JsonRow(pk, (position, pk), found) for pk, position, found in orjson.loads(rows[0][0])]


async def content_json_by_id(
    db: Database,
    shape: Shape,
    viewing: Viewing,
    ids: Sequence[int],
    *,
    access: ContentAccess,
    published_only: bool,
) -> list[dict[str, Any] | None]:
    """The JSON object of each id the viewer may see, in the order of `ids`; None where
    there is no such content, it is hidden, or (published_only) not published."""
    params = SqlParams()
    builder = _Builder(viewing, params)
    node = builder.object(shape, "c")
    conditions = [f"c.id = ANY({params(list(ids), 'bigint[]')})", access_sql(access, "c", params)]
    if published_only:
        conditions.append("c.status = 'PUBLISHED'")
    select = (
        f"SELECT coalesce(json_object_agg(c.id, {node}), '{{}}')::text FROM contents c"
        f" WHERE {' AND '.join(conditions)}"
    )
    rows = await db.fetch(builder.with_clause() + select, *params.values)
    found = orjson.loads(rows[0][0])
    return [found.get(str(i)) for i in ids]
