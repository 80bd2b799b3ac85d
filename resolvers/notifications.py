"""The viewer's notifications."""

from db.queries import notifications as queries
from db.tables import Notification
from resolvers.context import Context
from resolvers.errors import BadUserInput, require_viewer_id
from resolvers.ids import decode_id
from resolvers.paging import Page, check_first

KIND = "notifications"


async def list_notifications(
    ctx: Context, *, first: int, after: str | None, unread_only: bool
) -> Page[Notification]:
    viewer_id = require_viewer_id(ctx.viewer.id, "read notifications")
    limit = check_first(first, ctx.max_page_size)
    kind = f"{KIND}:{'unread' if unread_only else 'all'}"
    before_id = None
    if after is not None:
        values = ctx.cursors.decode(after, kind)
        if len(values) != 1 or not isinstance(values[0], int):
            raise BadUserInput("`after` is not a cursor of this list")
        before_id = values[0]
    rows: list[Notification] = []
    if limit:
        async with ctx.db.session() as session:
            rows = await queries.list_notifications(
                session, viewer_id, unread_only=unread_only, before_id=before_id, limit=limit + 1
            )

    async def total_count() -> int:
        async with ctx.db.session() as session:
            return await queries.count_notifications(session, viewer_id, unread_only=unread_only)

    return Page(
        edges=[(ctx.cursors.encode(kind, (row.id,)), row) for row in rows[:limit]],
        has_next=len(rows) > limit,
        has_previous=after is not None,
        total_count=total_count,
    )


async def get_notification(ctx: Context, pk: int) -> Notification | None:
    if ctx.viewer.id is None:
        return None
    async with ctx.db.session() as session:
        (found,) = await queries.notifications_by_id(session, [pk], recipient_id=ctx.viewer.id)
    return found


async def mark_read(ctx: Context, global_ids: list[str] | None) -> int:
    viewer_id = require_viewer_id(ctx.viewer.id, "mark notifications read")
    ids = None
    if global_ids is not None:
        ids = []
        for global_id in global_ids:
            type_name, pk = decode_id(global_id, argument="ids")
            if type_name != "Notification":
                raise BadUserInput("`ids` must hold notification ids", field="ids")
            if pk is not None:  # otherwise it names no notification
                ids.append(pk)
    async with ctx.db.session() as session:
        changed = await queries.mark_read(session, viewer_id, ids)
        await session.commit()
    return changed
