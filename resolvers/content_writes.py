"""Writing content: create as a draft, edit, publish, archive, delete."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Content
from db.writes import contents as writes
from resolvers import email_accounts, policy, validation, webhook_events
from resolvers.context import Context
from resolvers.errors import Forbidden, NotFound, require_viewer_id
from resolvers.ids import decode_id_of

NOT_FOUND = "No content with this id."


@dataclass(frozen=True, slots=True)
class ContentInput:
    """Fields as the client sent them; None where left out (updates keep those)."""

    title: str | None = None
    summary: str | None = None
    body: str | None = None
    tags: list[str] | None = None
    visibility: str | None = None
    language: str | None = None


def _fields(data: ContentInput, *, creating: bool) -> tuple[dict[str, Any], list[str] | None]:
    fields: dict[str, Any] = {}
    if data.title is not None or creating:
        fields["title"] = validation.text(
            data.title or "", field="title", maximum=validation.MAX_TITLE
        )
    if data.body is not None or creating:
        fields["body"] = validation.text(data.body or "", field="body", maximum=validation.MAX_BODY)
    if data.summary is not None:
        summary = validation.text(
            data.summary, field="summary", maximum=validation.MAX_SUMMARY, required=False
        )
        fields["summary"] = summary or None
    if data.visibility is not None:
        fields["visibility"] = data.visibility
    if data.language is not None:
        fields["language"] = validation.language(data.language)
    tags = validation.tag_names(data.tags) if data.tags is not None else None
    return fields, tags


async def create_content(ctx: Context, data: ContentInput) -> int:
    """The new draft's id."""
    author_id = require_viewer_id(ctx.viewer.id, "write content")
    fields, tags = _fields(data, creating=True)
    async with ctx.db.session() as session:
        content = await writes.insert_content(
            session, author_id=author_id, tags=tags or [], **fields
        )
        await session.commit()
    assert content.id is not None
    return content.id


async def _change(
    ctx: Context,
    global_id: str,
    *,
    action: str,
    allowed: Callable[[Any, Content], bool],
    change: Callable[[AsyncSession, Content], Any],
) -> int:
    """Loads the content as the viewer sees it (NOT_FOUND if they cannot), checks the
    write rule (FORBIDDEN), applies `change` and commits, all in one transaction; the
    content's id."""
    require_viewer_id(ctx.viewer.id, action)
    pk = decode_id_of(global_id, "Content")
    access = policy.content_filter(ctx.viewer)
    async with ctx.db.session() as session:
        content = (
            None if pk is None else await writes.get_content_for_update(session, pk, access=access)
        )
        if content is None:
            raise NotFound(NOT_FOUND)
        if not allowed(ctx.viewer, content):
            raise Forbidden(f"You may not {action}: it is not yours.")
        await change(session, content)
        await session.commit()
    assert content.id is not None
    return content.id


async def update_content(ctx: Context, global_id: str, data: ContentInput) -> int:
    fields, tags = _fields(data, creating=False)
    images = ctx.safeguards.images

    async def change(session: AsyncSession, content: Content) -> None:
        was_public = webhook_events.is_public(content)
        await writes.update_content(session, content, tags=tags, **fields)
        await webhook_events.content_event(
            session, "content.updated", content, was_public=was_public, images=images
        )

    return await _change(
        ctx, global_id, action="edit this content", allowed=policy.can_edit_content, change=change
    )


async def publish_content(ctx: Context, global_id: str) -> int:
    await email_accounts.require_verified_to_publish(ctx)
    images = ctx.safeguards.images

    async def change(session: AsyncSession, content: Content) -> None:
        if content.status == "PUBLISHED":
            return
        if await writes.publish_content(session, content):
            await writes.notify_followers_of_content(
                session, content, audience=policy.member_filter()
            )
        await writes.announce_published(session, content)
        await webhook_events.content_event(
            session, "content.published", content, was_public=False, images=images
        )

    return await _change(
        ctx,
        global_id,
        action="publish this content",
        allowed=policy.can_publish_content,
        change=change,
    )


async def archive_content(ctx: Context, global_id: str) -> int:
    images = ctx.safeguards.images

    async def change(session: AsyncSession, content: Content) -> None:
        if content.status != "ARCHIVED":
            was_public = webhook_events.is_public(content)
            await writes.archive_content(session, content)
            await webhook_events.content_event(
                session, "content.archived", content, was_public=was_public, images=images
            )

    return await _change(
        ctx,
        global_id,
        action="archive this content",
        allowed=policy.can_archive_content,
        change=change,
    )


async def delete_content(ctx: Context, global_id: str) -> str:
    """The id of what was deleted, as the client sent it."""
    images = ctx.safeguards.images

    async def change(session: AsyncSession, content: Content) -> None:
        await webhook_events.content_event(
            session,
            "content.deleted",
            content,
            was_public=webhook_events.is_public(content),
            images=images,
        )
        await writes.delete_content(session, content)

    await _change(
        ctx,
        global_id,
        action="delete this content",
        allowed=policy.can_delete_content,
        change=change,
    )
    return global_id
