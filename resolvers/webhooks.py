"""Webhook endpoints: ADMIN only, from creation (which hands out the signing secret
once) to deletion."""

import base64
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from db import webhooks as queries
from resolvers import policy
from resolvers.addresses import AddressRefused, resolve_allowed
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound, require_viewer_id
from resolvers.ids import decode_id_of

MAX_URL = 2000
NOT_FOUND = "No webhook with this id."


def _require_admin(ctx: Context, action: str) -> int:
    viewer_id = require_viewer_id(ctx.viewer.id, action)
    if not policy.can_manage_webhooks(ctx.viewer):
        raise Forbidden(f"Only an ADMIN may {action}.")
    return viewer_id


async def _checked_url(ctx: Context, url: str) -> str:
    url = url.strip()
    if len(url) > MAX_URL:
        raise BadUserInput(f"`url` must be at most {MAX_URL} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadUserInput("`url` is not a URL: use https://host/path", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadUserInput("`url` must be an http or https URL with a host", field="url")
    if parts.username is not None or parts.password is not None:
        raise BadUserInput(
            "`url` must not carry credentials: deliveries are signed instead", field="url"
        )
    try:
        await resolve_allowed(
            parts.hostname, port, allow_private=ctx.outreach.allow_private_webhooks
        )
    except AddressRefused as error:
        raise BadUserInput(f"`url`: {error}; use a public address", field="url") from None
    return url


def new_secret() -> str:
    """whsec_ and 32 random bytes in base64, as Standard Webhooks' libraries expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_webhook(ctx: Context, url: str, events: Sequence[str]) -> tuple[int, str]:
    """The endpoint's id and its signing secret (shown this once)."""
    viewer_id = _require_admin(ctx, "create webhooks")
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise BadUserInput("`events` must name at least one event", field="events")
    checked = await _checked_url(ctx, url)
    secret = new_secret()
    async with ctx.db.session() as session:
        webhook = await queries.insert_webhook(
            session, url=checked, events=chosen, secret=secret, created_by=viewer_id
        )
        await session.commit()
    assert webhook.id is not None
    return webhook.id, secret


async def delete_webhook(ctx: Context, global_id: str) -> str:
    _require_admin(ctx, "delete webhooks")
    pk = decode_id_of(global_id, "Webhook")
    async with ctx.db.session() as session:
        deleted = pk is not None and await queries.delete_webhook(session, pk)
        await session.commit()
    if not deleted:
        raise NotFound(NOT_FOUND)
    return global_id
