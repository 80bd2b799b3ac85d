"""The one typed context every resolver receives."""

import uuid
from dataclasses import dataclass, field

from db.session import Database
from resolvers.auth import PasswordService, TokenService
from resolvers.cursors import CursorCodec
from resolvers.loaders import Loaders, create_loaders
from resolvers.ranking import RankingWeights
from resolvers.viewer import Viewer


@dataclass(frozen=True, slots=True)
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
) -> Context:
    return Context(
        viewer=viewer,
        db=db,
        loaders=create_loaders(
            db, viewer, habit_half_life_days=(ranking or RankingWeights()).habit_half_life_days
        ),
        cursors=cursors,
        passwords=passwords,
        tokens=tokens,
        ranking=ranking or RankingWeights(),
        max_page_size=max_page_size,
        request_id=request_id or uuid.uuid4().hex,
    )
