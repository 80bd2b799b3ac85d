"""Saving the viewer's preferences."""

from dataclasses import dataclass

from db.queries import users as user_queries
from db.writes.preferences import FollowedAndMuted, save_preferences
from resolvers import email_settings, validation
from resolvers.context import Context
from resolvers.errors import BadUserInput, require_viewer_id


@dataclass(frozen=True, slots=True)
class PreferencesInput:
    """None means "keep what is stored"; a list replaces it."""

    followed_tags: list[tuple[str, float]] | None = None
    muted_tags: list[str] | None = None
    muted_authors: list[str] | None = None
    languages: list[str] | None = None
    email: email_settings.EmailSettingsChange | None = None


async def update_preferences(ctx: Context, data: PreferencesInput) -> int:
    """Saves them; the viewer's id (whose preferences they are)."""
    viewer_id = require_viewer_id(ctx.viewer.id, "save preferences")
    followed: list[tuple[str, float]] | None = None
    if data.followed_tags is not None:
        names = validation.tag_names(
            [name for name, _ in data.followed_tags],
            field="followedTags",
            maximum=validation.MAX_PREFERENCE_TAGS,
        )
        if len(names) != len(data.followed_tags):
            raise BadUserInput("`followedTags` names a tag twice", field="followedTags")
        followed = [
            (name, validation.weight(weight, tag=name))
            for name, (_, weight) in zip(names, data.followed_tags, strict=True)
        ]
    muted_tags = (
        validation.tag_names(
            data.muted_tags, field="mutedTags", maximum=validation.MAX_PREFERENCE_TAGS
        )
        if data.muted_tags is not None
        else None
    )
    if followed is not None and muted_tags is not None:
        both = sorted({name for name, _ in followed} & set(muted_tags))
        if both:
            raise BadUserInput(
                f"`mutedTags`: #{both[0]} is also in `followedTags`; a tag is followed or muted, not both",
                field="mutedTags",
            )
    languages = validation.languages(data.languages) if data.languages is not None else None
    async with ctx.db.session() as session:
        author_ids = None
        if data.muted_authors is not None:
            handles = list(
                dict.fromkeys(
                    validation.handle(h, field="mutedAuthors") for h in data.muted_authors
                )
            )
            if len(handles) > validation.MAX_MUTED_AUTHORS:
                raise BadUserInput(
                    f"`mutedAuthors` takes at most {validation.MAX_MUTED_AUTHORS} handles",
                    field="mutedAuthors",
                )
            found = await user_queries.users_by_handle(session, handles)
            missing = [h for h, user in zip(handles, found, strict=True) if user is None]
            if missing:
                raise BadUserInput(f"`mutedAuthors`: no user @{missing[0]}", field="mutedAuthors")
            author_ids = [user.id for user in found if user is not None and user.id is not None]
            if viewer_id in author_ids:
                raise BadUserInput("`mutedAuthors`: you cannot mute yourself", field="mutedAuthors")
        try:
            await save_preferences(
                session,
                viewer_id,
                followed_tags=followed,
                muted_tags=muted_tags,
                muted_author_ids=author_ids,
                languages=languages,
            )
            if data.email is not None:
                await email_settings.save(session, viewer_id, data.email)
        except FollowedAndMuted as clash:
            raise _followed_and_muted(clash) from None
        await session.commit()
    return viewer_id


def _followed_and_muted(clash: FollowedAndMuted) -> BadUserInput:
    if clash.given == "followed":
        return BadUserInput(
            f"`followedTags`: #{clash.tag} is muted; a tag is followed or muted, not both: "
            "send `mutedTags` without it in the same call",
            field="followedTags",
        )
    return BadUserInput(
        f"`mutedTags`: #{clash.tag} is followed; a tag is followed or muted, not both: "
        "send `followedTags` without it in the same call",
        field="mutedTags",
    )
