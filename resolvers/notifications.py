"""Marking the viewer's notifications read."""

from db.queries import notifications as queries
from resolvers.context import Context
from resolvers.errors import BadUserInput, require_viewer_id
from resolvers.ids import decode_id


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
