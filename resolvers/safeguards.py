"""What resolvers do to keep one client from degrading the gateway for others
(docs/security.md), as the gateway's settings configure it."""

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from resolvers.render import RemoteImages

if TYPE_CHECKING:
    from resolvers.throttle import AuthThrottle


@dataclass(frozen=True, slots=True)
class Safeguards:
    # Repeats of one notification (same actor, recipient, kind and content) within this
    # window are not written again.
    notification_collapse: timedelta = timedelta(hours=24)
    images: RemoteImages = RemoteImages.DROP
    # Sign-in and sign-up limits; None (contexts built outside the gateway) limits nothing.
    throttle: "AuthThrottle | None" = None
