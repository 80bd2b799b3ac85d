"""Following people and reacting to content, with the notifications they send."""

from db.queries import users as user_queries
from db.tables import User
from db.writes import contents as content_writes
from db.writes import social as writes
from resolvers import policy, validation
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound, require_viewer_id
from resolvers.ids import decode_id_of


async def _user(ctx: Context, handle: str) -> User:
    name = validation.handle(handle) if handle.strip() else ""
    async with ctx.db.session() as session:
        (user,) = await user_queries.users_by_handle(session, [name])
    if user is None:
        raise NotFound(f"No user @{name}.")
    return user


async def follow(ctx: Context, handle: str) -> User:
    viewer_id = require_viewer_id(ctx.viewer.id, "follow people")
    user = await _user(ctx, handle)
    assert user.id is not None
    if user.id == viewer_id:
        raise BadUserInput("`handle`: you cannot follow yourself", field="handle")
    async with ctx.db.session() as session:
        if await writes.insert_follow(session, follower_id=viewer_id, followee_id=user.id):
            await writes.insert_notification(
                session,
                recipient_id=user.id,
                kind="NEW_FOLLOWER",
                actor_id=viewer_id,
                collapse=ctx.safeguards.notification_collapse,
            )
        await session.commit()
    return user


async def unfollow(ctx: Context, handle: str) -> User:
    viewer_id = require_viewer_id(ctx.viewer.id, "unfollow people")
    user = await _user(ctx, handle)
    assert user.id is not None
    async with ctx.db.session() as session:
        await writes.delete_follow(session, follower_id=viewer_id, followee_id=user.id)
        await session.commit()
    return user


async def _reaction(ctx: Context, global_id: str, *, adding: bool) -> int:
    """The content's id."""
    viewer_id = require_viewer_id(ctx.viewer.id, "react")
    pk = decode_id_of(global_id, "Content", argument="contentId")
    access = policy.content_filter(ctx.viewer)
    async with ctx.db.session() as session:
        content = (
            None
            if pk is None
            else await content_writes.get_content_for_update(session, pk, access=access)
        )
        if content is None:
            raise NotFound("No content with this id.")
        assert content.id is not None
        if adding:
            if not policy.can_react_to(ctx.viewer, content):
                raise Forbidden("Only published content takes reactions.")
            added = await writes.insert_reaction(session, user_id=viewer_id, content_id=content.id)
            if added and content.author_id != viewer_id:
                await writes.insert_notification(
                    session,
                    recipient_id=content.author_id,
                    kind="REACTION",
                    actor_id=viewer_id,
                    content_id=content.id,
                    collapse=ctx.safeguards.notification_collapse,
                )
        else:
            await writes.delete_reaction(session, user_id=viewer_id, content_id=content.id)
        await session.commit()
    return content.id


async def react(ctx: Context, global_id: str) -> int:
    return await _reaction(ctx, global_id, adding=True)


async def unreact(ctx: Context, global_id: str) -> int:
    return await _reaction(ctx, global_id, adding=False)
