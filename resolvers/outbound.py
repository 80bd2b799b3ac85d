"""What an outgoing email says, composed when the delivery worker sends it: from the
data as it is then, seen as its recipient may see it, with fresh link tokens stored
(committed) before anything is sent. The gateway renders the result with templates."""

import re
from dataclasses import dataclass, field
from typing import Any

from db import account_tokens
from db import email_settings as settings_queries
from db.email_settings import SETTING_OF_KIND
from db.outbox import Delivery
from db.queries.contents import contents_by_id
from db.queries.users import get_user_by_login, users_by_id
from db.session import Database
from db.tables import Content, Notification, User
from resolvers import policy
from resolvers.ids import encode_id
from resolvers.outreach import (
    RESET_PASSWORD_PATH,
    UNSUBSCRIBE_PATH,
    VERIFY_EMAIL_PATH,
    Outreach,
    link_token,
    token_hash,
)
from resolvers.viewer import Viewer

VERIFY_TTL_SECONDS = 48 * 3600
RESET_TTL_SECONDS = 3600
# Mail clients offer one-click unsubscribe for as long as the message is kept.
UNSUBSCRIBE_TTL_SECONDS = 180 * 86400
MAX_SUBJECT = 150


@dataclass(frozen=True, slots=True)
class EmailDraft:
    to_address: str
    to_name: str
    template: str
    subject: str
    values: dict[str, Any]
    # Set on everything but account mail: List-Unsubscribe (RFC 8058) and the footer.
    unsubscribe_url: str | None = None
    # Links a developer may click from the log when mail goes to files.
    links: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to send (the address is unknown, the notification was read, ...)."""

    reason: str


def _subject(text: str) -> str:
    """One line (titles and names come from users): headers must not break."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= MAX_SUBJECT else line[: MAX_SUBJECT - 1] + "…"


def _person(user: User | None) -> dict[str, str]:
    if user is None:
        return {"name": "Someone", "handle": ""}
    return {"name": user.display_name, "handle": user.handle}


def _content(outreach: Outreach, content: Content | None) -> dict[str, Any] | None:
    if content is None:
        return None
    assert content.id is not None
    return {
        "title": content.title,
        "summary": content.summary,
        "url": outreach.content_link(encode_id("Content", content.id)),
    }


def _account_draft(user: User, template: str, subject: str, **values: Any) -> EmailDraft:
    links = tuple(v for v in values.values() if isinstance(v, str) and "token=" in v)
    return EmailDraft(
        to_address=user.email,
        to_name=user.display_name,
        template=template,
        subject=subject,
        values={"name": user.display_name, "handle": user.handle, **values},
        links=links,
    )


async def compose_email(db: Database, delivery: Delivery, outreach: Outreach) -> EmailDraft | Skip:
    topic = delivery.topic
    if topic == "password_reset":
        return await _password_reset(db, delivery, outreach)
    async with db.session() as session:
        (user,) = await users_by_id(session, [delivery.recipient_id or 0])
    if user is None:
        return Skip("the recipient's account is gone")
    if topic == "verify_email":
        return await _verify_email(db, delivery, outreach, user)
    if topic == "password_changed":
        return _account_draft(user, "password_changed", "Your password was changed")
    if user.email_verified_at is None:
        return Skip("the recipient's address is not verified")
    if topic == "notification":
        return await _notification(db, delivery, outreach, user)
    if topic == "digest":
        return await _digest(db, delivery, outreach, user)
    return Skip(f"unknown email topic {topic!r}")


async def _store_link(
    db: Database, outreach: Outreach, delivery: Delivery, user: User, *, purpose: str,
    scope: str | None, ttl: float, path: str,
) -> str:  # fmt: skip
    assert user.id is not None
    token = link_token(outreach.link_key, purpose, delivery.id)
    async with db.session() as session:
        await account_tokens.store_token(
            session,
            token_hash=token_hash(token),
            user_id=user.id,
            purpose=purpose,
            scope=scope,
            ttl_seconds=ttl,
        )
        await session.commit()
    return outreach.link(path, token)


async def _verify_email(
    db: Database, delivery: Delivery, outreach: Outreach, user: User
) -> EmailDraft | Skip:
    if user.email_verified_at is not None:
        return Skip("the address is verified already")
    if delivery.payload.get("email") != user.email:
        return Skip("the account's address changed since")
    link = await _store_link(
        db, outreach, delivery, user, purpose="VERIFY_EMAIL", scope=user.email,
        ttl=VERIFY_TTL_SECONDS, path=VERIFY_EMAIL_PATH,
    )  # fmt: skip
    return _account_draft(user, "verify_email", "Confirm your email address", link=link)


async def _password_reset(
    db: Database, delivery: Delivery, outreach: Outreach
) -> EmailDraft | Skip:
    address = str(delivery.payload.get("email", ""))
    async with db.session() as session:
        user = await get_user_by_login(session, address)
    if user is None or user.email != address:
        return Skip("no account has this address")
    link = await _store_link(
        db, outreach, delivery, user, purpose="RESET_PASSWORD", scope=None,
        ttl=RESET_TTL_SECONDS, path=RESET_PASSWORD_PATH,
    )  # fmt: skip
    return _account_draft(user, "password_reset", "Reset your password", link=link)


async def _unsubscribe_link(
    db: Database, outreach: Outreach, delivery: Delivery, user: User, setting: str
) -> str:
    return await _store_link(
        db, outreach, delivery, user, purpose="UNSUBSCRIBE", scope=setting,
        ttl=UNSUBSCRIBE_TTL_SECONDS, path=UNSUBSCRIBE_PATH,
    )  # fmt: skip


def notification_text(
    notification: Notification, actor: User | None, content: Content | None
) -> str:
    """One line about a notification, for subjects and digests."""
    who = _person(actor)["name"]
    title = f"“{content.title}”" if content is not None else "your content"
    if notification.kind == "NEW_FOLLOWER":
        return f"{who} started following you"
    if notification.kind == "REACTION":
        return f"{who} reacted to {title}"
    return f"{who} published {title}"


async def _notification(
    db: Database, delivery: Delivery, outreach: Outreach, user: User
) -> EmailDraft | Skip:
    assert user.id is not None
    notification_id = int(delivery.payload.get("notification", 0))
    async with db.session() as session:
        found = await settings_queries.notifications_by_id(session, [notification_id])
        settings = await settings_queries.get_email_settings(session, user.id)
        if not found:
            return Skip("the notification is gone")
        notification = found[0]
        setting = SETTING_OF_KIND[notification.kind]
        (actor,) = await users_by_id(session, [notification.actor_id or 0])
        access = policy.content_filter(Viewer(id=user.id, role=user.role))
        content_id = notification.content_id
        (content,) = (
            await contents_by_id(session, [content_id], access=access) if content_id else [None]
        )
    if notification.read_at is not None:
        return Skip("the notification was read in the app first")
    if getattr(settings, setting) != "IMMEDIATELY":
        return Skip(f"the recipient no longer wants {setting} emails")
    if content_id is not None and content is None:
        return Skip("the content is gone or no longer visible to the recipient")
    unsubscribe = await _unsubscribe_link(db, outreach, delivery, user, setting)
    return EmailDraft(
        to_address=user.email,
        to_name=user.display_name,
        template="notification",
        subject=_subject(notification_text(notification, actor, content)),
        values={
            "name": user.display_name,
            "kind": notification.kind,
            "actor": _person(actor),
            "content": _content(outreach, content),
            "setting": setting,
        },
        unsubscribe_url=unsubscribe,
        links=(unsubscribe,),
    )


async def _digest(
    db: Database, delivery: Delivery, outreach: Outreach, user: User
) -> EmailDraft | Skip:
    assert user.id is not None
    ranked = [(int(i[0]), list(i[2])) for i in delivery.payload.get("items", [])]
    notification_ids = [int(i) for i in delivery.payload.get("notifications", [])]
    access = policy.content_filter(Viewer(id=user.id, role=user.role))
    async with db.session() as session:
        contents = await contents_by_id(session, [i for i, _ in ranked], access=access)
        notifications = await settings_queries.notifications_by_id(session, notification_ids)
        people = [c.author_id for c in contents if c] + [
            n.actor_id for n in notifications if n.actor_id
        ]
        users = {u.id: u for u in await users_by_id(session, people) if u is not None}
        related = [n.content_id for n in notifications if n.content_id]
        visible = {
            c.id: c for c in await contents_by_id(session, related, access=access) if c is not None
        }
    items = [
        {**(_content(outreach, c) or {}), "author": _person(users.get(c.author_id)), "reasons": r}
        for c, (_, r) in zip(contents, ranked, strict=True)
        if c is not None
    ]
    lines = [
        notification_text(n, users.get(n.actor_id or 0), visible.get(n.content_id or 0))
        for n in sorted(notifications, key=lambda n: -(n.id or 0))
        if n.content_id is None or n.content_id in visible
    ]
    if not items and not lines:
        return Skip("nothing in the digest is visible to the recipient any more")
    frequency = str(delivery.payload.get("frequency", "DAILY")).lower()
    unsubscribe = await _unsubscribe_link(db, outreach, delivery, user, "digest")
    count = f"{len(items)} new item{'s' if len(items) != 1 else ''}"
    return EmailDraft(
        to_address=user.email,
        to_name=user.display_name,
        template="digest",
        subject=_subject(f"Your {frequency} digest: {count}"),
        values={
            "name": user.display_name,
            "frequency": frequency,
            "items": items,
            "notifications": lines,
        },
        unsubscribe_url=unsubscribe,
        links=(unsubscribe,),
    )
