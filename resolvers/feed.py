"""Walking the feed and search results: what their cursors hold, and which walk a first
page starts. The ranking itself is SQL (db/reads/walks.py, db/feed/)."""

import uuid
from datetime import datetime
from typing import Any

from resolvers.context import Context
from resolvers.errors import BadUserInput

FEED_KIND = "feed"
# Anonymous viewers share one ranking a minute: nothing in it is personal.
SHARED_BUCKET_SECONDS = 60
WALK_EXPIRED = (
    "`after` belongs to a walk that has expired (walks last an hour): start again without `after`"
)


def bucket(audience: str, now: datetime) -> str:
    """The shared list of `audience` ("anonymous" or "members") for this minute."""
    return f"{audience}:{int(now.timestamp()) // SHARED_BUCKET_SECONDS}"


def is_shared(walk_id: str) -> bool:
    return walk_id.startswith("anonymous:")


def new_walk(kind: str) -> str:
    return f"{kind.split(':', 1)[0]}-{uuid.uuid4().hex}"


def decode_walk_cursor(ctx: Context, after: str, kind: str) -> tuple[str, int]:
    """(walk id, position) of a cursor of this walk kind; BAD_USER_INPUT otherwise."""
    values: list[Any] = ctx.cursors.decode(after, kind)
    if len(values) != 2 or not isinstance(values[0], str) or not isinstance(values[1], int):
        raise BadUserInput("`after` is not a cursor of this list")
    return values[0], values[1]
