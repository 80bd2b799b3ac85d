"""The one typed context every resolver receives."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from db.notify import EventBus
from db.ranking import RankingWeights
from db.session import Database
from resolvers.auth import PasswordService, TokenCheck, TokenService
from resolvers.cursors import CursorCodec
from resolvers.outreach import Outreach
from resolvers.safeguards import Safeguards
from resolvers.viewer import Viewer


class Reads(Protocol):
    """How resolvers read: every object a field returns is compiled from the field's
    own selection into one statement (execution/executor.py)."""

    async def field(self, info: Any) -> Any:
        """The value of the root field being resolved."""

    async def entity(
        self, info: Any, type_name: str, pk: int, *, viewer: Viewer | None = None
    ) -> Any:
        """The object `pk` of `type_name` for the selection of the field being resolved."""


class Live(Protocol):
    """Live subscriptions (execution/broadcast.py): each yields the values of its
    field until it ends."""

    def content_published(self, info: Any, tags: list[str] | None) -> AsyncIterator[Any]: ...

    def notifications(self, info: Any) -> AsyncIterator[Any]: ...

    def content_events(
        self, info: Any, tags: list[str] | None, after: str | None
    ) -> AsyncIterator[Any]: ...

    def notification_events(self, info: Any, after: str | None) -> AsyncIterator[Any]: ...


# Not frozen: a WebSocket connection learns its viewer only at connection_init, after
# the context exists (strawberry also writes `connection_params` onto it then).
@dataclass(slots=True)
class Context:
    viewer: Viewer
    db: Database
    reads: Reads
    cursors: CursorCodec
    passwords: PasswordService
    tokens: TokenService
    ranking: RankingWeights = field(default_factory=RankingWeights)
    max_page_size: int = 100
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    bus: EventBus | None = None
    live: Live | None = None
    # Set while `viewer` is not yet confirmed by the database (resolvers/auth.py).
    token_check: TokenCheck | None = None
    # When the viewer's token stops being valid; live subscriptions end then.
    token_expires_at: datetime | None = None
    connection_params: dict[str, Any] | None = None
    # Set once the HTTP view asked the executor for the whole query: the schema
    # extension then does not ask again before strawberry runs it.
    compiled_read_tried: bool = False
    # The client's address (the peer's, or a trusted proxy's X-Forwarded-For).
    client_address: str | None = None
    safeguards: Safeguards = field(default_factory=Safeguards)
    # Email links, account rate limits, webhook address rules (resolvers/outreach.py).
    outreach: Outreach = field(default_factory=Outreach)


async def confirm_viewer(ctx: Context) -> None:
    """Makes sure the database confirmed the context's viewer (a no-op once it has):
    what runs anything but a checked read calls this first. Raises Unauthenticated."""
    check = ctx.token_check
    if check is not None:
        ctx.viewer = await check.confirm()
        ctx.token_check = None
