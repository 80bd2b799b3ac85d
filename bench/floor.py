"""The floor of bench.http: a bare Starlette endpoint that answers each benchmarked
GraphQL document with ONE hand-written SQL statement building the whole JSON response
in Postgres (json_build_object / json_agg), returned as it comes.

    FLOOR_DATABASE_URL=postgresql://... FLOOR_SECRET_KEY=... \\
        uvicorn bench.floor:create_app --factory --no-access-log

It knows only the documents in OPERATIONS (matched by their exact text, like persisted
queries) and applies the gateway's rules to them: access (resolvers/policy.py: anonymous
viewers see PUBLISHED + PUBLIC, members also PUBLISHED + MEMBERS and their own), order,
opaque ids (resolvers/ids.py: base64url of "Type:pk" without padding, encoded in SQL),
tags by the viewer's affinity, and tokens (the gateway's JWT check in Python, the token
version checked inside the same statement). Only MEMBER viewers are supported (no
admins). The feed has no floor of its own: bench.http measures it against the contents
list, the cost of a page of 20 items."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.ranking import RankingWeights
from gateway.auth import Tokens
from resolvers.errors import Unauthenticated

# --- the documents ------------------------------------------------------------------
# Signed cursors (edges' cursor, pageInfo's start/endCursor) are left out: they are HMACs
# under the gateway's secret, so they cannot be equal by construction.

CONTENTS = """query Contents($first: Int!) {
  contents(first: $first) {
    edges { node { id title publishedAt reactionCount author { id handle displayName } tags { id name } } }
    pageInfo { hasNextPage }
  }
}"""

PROFILE = """query Profile($handle: String!, $first: Int!) {
  user(handle: $handle) {
    id handle displayName bio followerCount followingCount viewerFollows
    contents(first: $first) {
      totalCount
      edges { node { id title publishedAt reactionCount viewerHasReacted tags { id name } } }
      pageInfo { hasNextPage }
    }
  }
}"""

LEFT_OUT = "edge cursors and pageInfo start/endCursor (signed with the gateway's secret)"

WEIGHTS = RankingWeights()

# --- SQL pieces -----------------------------------------------------------------------


def _gid(type_name: str, pk: str) -> str:
    """resolvers/ids.py encode_id in SQL: base64url of "Type:pk", padding stripped."""
    return (
        f"rtrim(translate(encode(convert_to('{type_name}:' || {pk}, 'UTF8'), 'base64'),"
        " '+/', '-_'), '=')"
    )


def _iso(ts: str) -> str:
    """Python's datetime.isoformat() of a UTC timestamptz, as strawberry's DateTime
    writes it: microseconds only when there are any."""
    return (
        f"to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN extract(microseconds FROM {ts})::bigint % 1000000 <> 0"
        f" THEN to_char({ts} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"
    )


def _author(author_id: str) -> str:
    return (
        f"(SELECT json_build_object('id', {_gid('User', 'u.id')}, 'handle', u.handle,"
        f" 'displayName', u.display_name) FROM users u WHERE u.id = {author_id})"
    )


def _tags_by_name(content_id: str) -> str:
    return (
        f"(SELECT coalesce(json_agg(json_build_object('id', {_gid('Tag', 't.id')}, 'name', t.name)"
        " ORDER BY t.name), '[]'::json)"
        f" FROM content_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.content_id = {content_id})"
    )


def _habits(viewer: str, now: str) -> str:
    """The viewer's decayed reactions per tag (db/reads/scoring.py habits) as a
    CTE named habits."""
    half_life = WEIGHTS.habit_half_life_days
    return (
        "habits AS (SELECT ct.tag_id, sum(power(0.5::float8,"
        f" (extract(epoch FROM ({now} - r.created_at)) / 86400.0) / {half_life}::float8)) AS decayed"
        " FROM reactions r JOIN content_tags ct ON ct.content_id = r.content_id"
        f" WHERE r.user_id = {viewer} AND r.created_at <= {now}"
        f" AND r.created_at > {now} - make_interval(days => {int(half_life * 8)})"
        " GROUP BY ct.tag_id)"
    )


def _tags_by_affinity(content_id: str, viewer: str) -> str:
    """A signed-in viewer's order (resolvers/content.py tags_of): explicit weight, else
    learned affinity d / (d + saturation), highest first, then by name (Python's order,
    hence COLLATE "C"). Needs the habits CTE."""
    saturation = WEIGHTS.habit_saturation
    affinity = (
        "coalesce(ft.weight, CASE WHEN h.decayed > 0"
        f" THEN h.decayed / (h.decayed + {saturation}::float8) ELSE 0 END)"
    )
    return (
        f"(SELECT coalesce(json_agg(json_build_object('id', {_gid('Tag', 't.id')}, 'name', t.name)"
        f" ORDER BY {affinity} DESC, t.name COLLATE \"C\"), '[]'::json)"
        " FROM content_tags ct JOIN tags t ON t.id = ct.tag_id"
        f" LEFT JOIN followed_tags ft ON ft.user_id = {viewer} AND ft.tag_id = ct.tag_id"
        " LEFT JOIN habits h ON h.tag_id = ct.tag_id"
        f" WHERE ct.content_id = {content_id})"
    )


def _reacted(viewer: str, content_id: str) -> str:
    return f"EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = {viewer} AND r.content_id = {content_id})"


def _member(viewer: str, token_version: str) -> str:
    """The token's check against the database (gateway/auth.py authenticate): the user
    exists and has not logged out since. NULL (-> 401) otherwise."""
    return (
        f"(SELECT token_version = {token_version} AND role = 'MEMBER'"
        f" FROM users WHERE id = {viewer})"
    )


# Anonymous: $1 first.
CONTENTS_SQL = f"""
WITH page AS (
  SELECT c.id, c.title, c.published_at, c.reaction_count, c.author_id, c.listed_at
  FROM contents c
  WHERE c.status = 'PUBLISHED' AND c.visibility IN ('PUBLIC')
  ORDER BY c.listed_at DESC, c.id DESC
  LIMIT $1::int + 1
), shown AS (
  SELECT * FROM page ORDER BY listed_at DESC, id DESC LIMIT $1::int
)
SELECT json_build_object('data', json_build_object('contents', json_build_object(
  'edges', coalesce((SELECT json_agg(json_build_object('node', json_build_object(
      'id', {_gid("Content", "s.id")}, 'title', s.title, 'publishedAt', {_iso("s.published_at")},
      'reactionCount', s.reaction_count, 'author', {_author("s.author_id")},
      'tags', {_tags_by_name("s.id")})) ORDER BY s.listed_at DESC, s.id DESC) FROM shown s),
    '[]'::json),
  'pageInfo', json_build_object('hasNextPage', (SELECT count(*) FROM page) > $1::int)
)))::text
"""

# Signed in: $1 handle, $2 viewer, $3 token version, $4 now, $5 first.
_PROFILE_VISIBLE = (
    "c.author_id = u.id AND ((c.status = 'PUBLISHED' AND c.visibility IN ('PUBLIC', 'MEMBERS'))"
    " OR c.author_id = $2::bigint)"
)
PROFILE_SQL = f"""
WITH {_habits("$2::bigint", "$4::timestamptz")},
u AS (SELECT * FROM users WHERE handle = $1::text),
page AS (
  SELECT c.id, c.title, c.published_at, c.reaction_count, c.listed_at
  FROM contents c, u WHERE {_PROFILE_VISIBLE}
  ORDER BY c.listed_at DESC, c.id DESC
  LIMIT $5::int + 1
), shown AS (
  SELECT * FROM page ORDER BY listed_at DESC, id DESC LIMIT $5::int
)
SELECT CASE WHEN {_member("$2::bigint", "$3::int")} THEN
json_build_object('data', json_build_object('user', (SELECT json_build_object(
  'id', {_gid("User", "u.id")}, 'handle', u.handle, 'displayName', u.display_name, 'bio', u.bio,
  'followerCount', (SELECT count(*) FROM follows f WHERE f.followee_id = u.id),
  'followingCount', (SELECT count(*) FROM follows f WHERE f.follower_id = u.id),
  'viewerFollows', EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2::bigint AND f.followee_id = u.id),
  'contents', json_build_object(
    'totalCount', (SELECT count(*) FROM contents c WHERE {_PROFILE_VISIBLE}),
    'edges', coalesce((SELECT json_agg(json_build_object('node', json_build_object(
        'id', {_gid("Content", "s.id")}, 'title', s.title, 'publishedAt', {_iso("s.published_at")},
        'reactionCount', s.reaction_count, 'viewerHasReacted', {_reacted("$2::bigint", "s.id")},
        'tags', {_tags_by_affinity("s.id", "$2::bigint")})) ORDER BY s.listed_at DESC, s.id DESC)
      FROM shown s), '[]'::json),
    'pageInfo', json_build_object('hasNextPage', (SELECT count(*) FROM page) > $5::int)))
  FROM u)))::text END
"""

# --- the endpoint ---------------------------------------------------------------------

OPERATIONS = {"contents": CONTENTS, "profile": PROFILE}
_BY_DOCUMENT = {document: name for name, document in OPERATIONS.items()}


def _error(status: int, message: str) -> Response:
    return Response(
        orjson.dumps({"errors": [{"message": message}]}), status, media_type="application/json"
    )


class Floor:
    def __init__(self, dsn: str, secret: str) -> None:
        self.dsn = dsn
        self.tokens = Tokens(secret, timedelta(hours=1))
        self.pool: Any = None

    async def start(self) -> None:
        # No reset query on release: nothing here leaves session state behind, and the
        # floor sends exactly one statement per request.
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=4, max_size=20, reset=_no_reset, command_timeout=60
        )

    async def stop(self) -> None:
        await self.pool.close()

    def _viewer(self, request: Request) -> tuple[int, int] | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated("Send the token as `Authorization: Bearer <token>`.")
        user_id, version, _ = self.tokens.claims(token.strip())
        return user_id, version

    async def graphql(self, request: Request) -> Response:
        payload = orjson.loads(await request.body())
        name = _BY_DOCUMENT.get(payload.get("query"))
        if name is None:
            return _error(400, "the floor answers only the documents of bench.floor.OPERATIONS")
        variables: dict[str, Any] = payload.get("variables") or {}
        try:
            viewer = self._viewer(request)
        except Unauthenticated as error:
            return _error(401, error.message)
        now = datetime.now(UTC)
        if name == "contents":
            if viewer is not None:
                return _error(400, "the floor's contents list is for anonymous viewers")
            body = await self.pool.fetchval(CONTENTS_SQL, variables["first"])
        elif viewer is None:
            return _error(400, f"the floor's {name} is for signed-in viewers")
        else:
            user_id, version = viewer
            body = await self.pool.fetchval(
                PROFILE_SQL, variables["handle"], user_id, version, now, variables["first"]
            )
        if body is None:
            return _error(401, "The token has been revoked: sign in again.")
        return Response(body.encode(), media_type="application/json")


async def _no_reset(connection: Any) -> None:
    return None


def create_app() -> Starlette:
    floor = Floor(os.environ["FLOOR_DATABASE_URL"], os.environ["FLOOR_SECRET_KEY"])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await floor.start()
        yield
        await floor.stop()

    return Starlette(routes=[Route("/graphql", floor.graphql, methods=["POST"])], lifespan=lifespan)
