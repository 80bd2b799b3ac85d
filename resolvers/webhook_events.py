"""The events webhooks receive, queued in the transaction of the write they report.

Only public data goes out: content's fields travel only while it is PUBLISHED and
PUBLIC. When a write takes public content out of public view (archived, deleted, made
MEMBERS or PRIVATE), the event carries its id and state alone, so an index can drop
it; content that was never public sends nothing."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db import webhooks as queries
from db.queries.contents import tags_by_content_id
from db.queries.users import users_by_id
from db.tables import Content, User
from resolvers.ids import encode_id
from resolvers.render import RemoteImages, render_markdown


def is_public(content: Content) -> bool:
    return content.status == "PUBLISHED" and content.visibility == "PUBLIC"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _envelope(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """Standard Webhooks' payload shape; `id` becomes the webhook-id header, the same on
    every attempt, so receivers can drop a delivery they already have."""
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": event,
        "timestamp": _iso(datetime.now(UTC)),
        "data": data,
    }


async def _public_content(
    session: AsyncSession, content: Content, images: RemoteImages
) -> dict[str, Any]:
    assert content.id is not None
    (author,) = await users_by_id(session, [content.author_id])
    (tags,) = await tags_by_content_id(session, [content.id])
    return {
        "id": encode_id("Content", content.id),
        "title": content.title,
        "summary": content.summary,
        "body": content.body,
        "bodyHtml": render_markdown(content.body, images=images),
        "language": content.language,
        "status": content.status,
        "visibility": content.visibility,
        "tags": [tag.name for tag in tags],
        "author": None if author is None else _public_user(author),
        "publishedAt": _iso(content.published_at),
        "updatedAt": _iso(content.updated_at),
    }


def _public_user(user: User) -> dict[str, Any]:
    assert user.id is not None
    return {
        "id": encode_id("User", user.id),
        "handle": user.handle,
        "displayName": user.display_name,
        "createdAt": _iso(user.created_at),
    }


async def content_event(
    session: AsyncSession,
    event: str,
    content: Content,
    *,
    was_public: bool,
    images: RemoteImages,
) -> None:
    """Queues `event` for `content` as it is now, to every endpoint that wants it.
    `was_public`: whether it was public before this write. `images` has no default: a
    receiver shows `bodyHtml` to readers as the API's clients do, so it must follow
    GATEWAY_REMOTE_IMAGES (the caller's `ctx.safeguards.images`) like the API does."""
    public_now = is_public(content) and event != "content.deleted"
    if not (public_now or was_public) or not await queries.has_subscribers(session, event):
        return
    assert content.id is not None
    if public_now:
        data = await _public_content(session, content, images)
    else:
        data = {"id": encode_id("Content", content.id)}
        if event != "content.deleted":
            data |= {"status": content.status, "visibility": content.visibility}
    await queries.enqueue_event(session, event, _envelope(event, data))


async def user_registered(session: AsyncSession, user: User) -> None:
    """Public profile fields only: never the address."""
    if await queries.has_subscribers(session, "user.registered"):
        await queries.enqueue_event(
            session, "user.registered", _envelope("user.registered", _public_user(user))
        )
