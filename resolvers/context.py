"""The one typed context every resolver receives."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from db.notify import EventBus
from db.session import Database
from resolvers.auth import PasswordService, TokenService
from resolvers.cursors import CursorCodec
from resolvers.loaders import Loaders, create_loaders
from resolvers.outreach import Outreach
from resolvers.ranking import RankingWeights
from resolvers.viewer import Viewer


# Not frozen: a WebSocket connection learns its viewer only at connection_init, after
# the context exists (strawberry also writes `connection_params` onto it then), and a
# subscription takes fresh loaders for every event it resolves.
@dataclass(slots=True)
class Context:
    viewer: Viewer
    db: Database
    loaders: Loaders
    cursors: CursorCodec
    passwords: PasswordService
    tokens: TokenService
    ranking: RankingWeights = field(default_factory=RankingWeights)
    max_page_size: int = 100
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    bus: EventBus | None = None
    # When the viewer's token stops being valid; live subscriptions end then.
    token_expires_at: datetime | None = None
    connection_params: dict[str, Any] | None = None
    # Set once the HTTP view asked the compiled read path: the schema extension then does
    # not ask again before the resolvers run (schema/compiled_reads.py).
    compiled_read_tried: bool = False
    # Subscription events being executed for this connection (schema/live_sharing.py).
    deliveries: dict[int, Any] = field(default_factory=dict)
    # Email links, account rate limits, webhook address rules (resolvers/outreach.py).
    outreach: Outreach = field(default_factory=Outreach)

    def refresh_loaders(self) -> Loaders:
        """New per-request caches, for a long-lived connection's next unit of work."""
        self.loaders = create_loaders(
            self.db, self.viewer, habit_half_life_days=self.ranking.habit_half_life_days
        )
        return self.loaders


def create_context(
    *,
    db: Database,
    viewer: Viewer,
    cursors: CursorCodec,
    passwords: PasswordService,
    tokens: TokenService,
    ranking: RankingWeights | None = None,
    max_page_size: int = 100,
    request_id: str | None = None,
    bus: EventBus | None = None,
    token_expires_at: datetime | None = None,
    outreach: Outreach | None = None,
) -> Context:
    weights = ranking or RankingWeights()
    return Context(
        viewer=viewer,
        db=db,
        loaders=create_loaders(db, viewer, habit_half_life_days=weights.habit_half_life_days),
        cursors=cursors,
        passwords=passwords,
        tokens=tokens,
        ranking=weights,
        max_page_size=max_page_size,
        request_id=request_id or uuid.uuid4().hex,
        bus=bus,
        token_expires_at=token_expires_at,
        outreach=outreach or Outreach(),
    )
