"""Reading users: lookups, their content, and the fields only some viewers may see."""

from db.queries import preferences as preference_queries
from db.queries.preferences import PreferencesView
from db.tables import Content, User
from resolvers import policy, validation
from resolvers.content import ContentOrder, ContentQuery, check_list_request, rows_page
from resolvers.context import Context
from resolvers.ids import decode_id_of
from resolvers.paging import Page
from resolvers.viewer import Viewer


async def get_user(ctx: Context, global_id: str) -> User | None:
    pk = decode_id_of(global_id, "User")
    return None if pk is None else await ctx.loaders.user_by_id.load(pk)


async def get_user_by_handle(ctx: Context, handle: str) -> User | None:
    return await ctx.loaders.user_by_handle.load(validation.normalize_handle(handle))


async def get_viewer(ctx: Context) -> User | None:
    if ctx.viewer.id is None:
        return None
    return await ctx.loaders.user_by_id.load(ctx.viewer.id)


def email_of(viewer: Viewer, user: User) -> str | None:
    assert user.id is not None
    return user.email if policy.can_see_email(viewer, user.id) else None


def email_verified_of(viewer: Viewer, user: User) -> bool | None:
    """Seen by whoever may see the address itself."""
    assert user.id is not None
    if not policy.can_see_email(viewer, user.id):
        return None
    return user.email_verified_at is not None


async def contents_of(ctx: Context, user: User, *, first: int, after: str | None) -> Page[Content]:
    """What the viewer may see of the user's content, newest first. Batched: the pages
    of every user in a list are read together."""
    assert user.id is not None
    request = check_list_request(
        ctx,
        query=ContentQuery(author_id=user.id),
        order=ContentOrder.NEWEST,
        first=first,
        after=after,
    )
    rows: list[Content] = []
    if request.limit:
        rows = await ctx.loaders.contents_by_author_page.load(
            (user.id, request.limit + 1, request.position)
        )
    return rows_page(ctx, request, rows, after=after)


async def preferences_of(ctx: Context, user: User, *, viewer: Viewer) -> PreferencesView | None:
    """Only the user themself sees their preferences."""
    assert user.id is not None
    if not policy.can_see_preferences(viewer, user.id):
        return None
    async with ctx.db.session() as session:
        return await preference_queries.get_preferences(session, user.id)
