"""Which notifications reach a user by email, and how often their digest comes."""

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from db import account_tokens
from db import email_settings as queries
from db.session import Database
from db.tables import EmailSettings, User
from resolvers.context import Context
from resolvers.outreach import token_hash

DIGEST_PERIODS = {"DAILY": timedelta(days=1), "WEEKLY": timedelta(days=7)}
# The choices GraphQL names, and the setting each one is stored as.
SETTINGS = {
    "newFollower": "new_follower",
    "reaction": "reaction",
    "newContentFromFollowed": "new_content_from_followed",
}
# What each setting is about, as pages say it.
TOPICS = {
    "new_follower": "new followers",
    "reaction": "reactions to your content",
    "new_content_from_followed": "new content from people you follow",
    "digest": "your digest",
}


@dataclass(frozen=True, slots=True)
class EmailSettingsChange:
    """None keeps the stored value."""

    new_follower: str | None = None
    reaction: str | None = None
    new_content_from_followed: str | None = None
    digest: str | None = None


async def settings_of(ctx: Context, user_id: int) -> EmailSettings:
    async with ctx.db.session() as session:
        return await queries.get_email_settings(session, user_id)


async def save(session: AsyncSession, user_id: int, change: EmailSettingsChange) -> None:
    """Inside the transaction of updatePreferences."""
    choices = {
        name: value
        for name, value in (
            ("new_follower", change.new_follower),
            ("reaction", change.reaction),
            ("new_content_from_followed", change.new_content_from_followed),
        )
        if value is not None
    }
    await queries.save_email_settings(
        session,
        user_id,
        choices=choices,
        digest=change.digest,
        digest_period=DIGEST_PERIODS.get(change.digest or ""),
    )


async def unsubscribe(session: AsyncSession, user_id: int, setting: str) -> None:
    """Turns one kind of email off: a notification setting to NEVER, or the digest."""
    if setting == "digest":
        await queries.save_email_settings(session, user_id, choices={}, digest="OFF")
    else:
        await queries.save_email_settings(session, user_id, choices={setting: "NEVER"})


async def peek_unsubscribe(db: Database, token: str) -> tuple[str, User] | None:
    """The setting an unsubscribe link turns off, and whose; None when the token is
    unknown or expired. A used one still answers: unsubscribing twice is harmless, and
    mail clients may post the one-click request more than once."""
    async with db.session() as session:
        found = await account_tokens.find_token(
            session, token_hash(token), purpose="UNSUBSCRIBE", used_too=True
        )
    if found is None or found[0].scope not in TOPICS:
        return None
    return str(found[0].scope), found[1]


async def unsubscribe_with_token(db: Database, token: str) -> tuple[str, User] | None:
    """Turns off what the link names, without a session (RFC 8058 one-click)."""
    found = await peek_unsubscribe(db, token)
    if found is None:
        return None
    setting, user = found
    assert user.id is not None
    async with db.session() as session:
        await account_tokens.use_token(session, token_hash(token), purpose="UNSUBSCRIBE")
        await unsubscribe(session, user.id, setting)
        await session.commit()
    return found
