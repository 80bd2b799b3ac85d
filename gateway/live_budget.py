"""What live subscriptions may cost while they run: a subscription holds its cost (the
operation's, as the limits measure it: gateway/limits.py) from the moment it starts
until it ends, against three budgets: its connection's, its client's (the signed-in
viewer, else the address, as for rate limits) and the process's. Each event makes every
subscription build and send its answer, so what subscriptions hold is what an event
costs this process; a rate limit, charged once when a subscription starts, does not
bound that.

Over the connection's or the client's budget the subscription is refused with
QUERY_TOO_COMPLEX (ending some of their own subscriptions makes room); over the
process's, with SERVICE_UNAVAILABLE (the server is full: retry later, or elsewhere)."""

from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import QueryTooComplex
from resolvers.errors import GatewayError, ServiceUnavailable


class ServerFull(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__()
        self.message = (
            "This server carries as many subscriptions as it may right now; retry in a "
            "while (or on another server)."
        )


@dataclass(frozen=True, slots=True)
class LiveLimits:
    operations_per_connection: int = 20
    cost_per_connection: int = 10_000
    cost_per_client: int = 50_000
    cost_per_process: int = 1_000_000
    # Database connections event work may hold at once (execution/broadcast.py).
    connections: int = 2


class LiveBudget:
    """The process's budget and each client's; connections keep their own total."""

    def __init__(self, limits: LiveLimits) -> None:
        self.limits = limits
        self.held = 0
        self.by_client: dict[str, int] = {}

    def operations_refusal(self, running: int) -> GatewayError | None:
        """Refuses one more operation on a connection already running `running`."""
        most = self.limits.operations_per_connection
        if running < most:
            return None
        return QueryTooComplex(
            f"This connection already runs {running} operations, the most one may run at "
            "once: complete one (or open another connection) first.",
            limit="operations per connection",
            value=running + 1,
            maximum=most,
        )

    def reserve(
        self, client: str, connection_holds: int, cost: int
    ) -> tuple[GatewayError | None, Callable[[], None]]:
        """Takes `cost` for a subscription of `client` on a connection that holds
        `connection_holds` already: a refusal (and nothing taken), or None and the
        function that gives it back when the subscription ends."""
        limits = self.limits
        client_holds = self.by_client.get(client, 0)
        for holds, most, whose in (
            (connection_holds, limits.cost_per_connection, "connection"),
            (client_holds, limits.cost_per_client, "client"),
        ):
            if holds + cost > most:
                return QueryTooComplex(
                    f"A subscription costing {cost:,} would bring this {whose}'s running "
                    f"subscriptions to {holds + cost:,}, over the limit of {most:,}: "
                    "end some, or ask for less in each.",
                    limit=f"subscription cost per {whose}",
                    value=holds + cost,
                    maximum=most,
                ), _nothing
        if self.held + cost > limits.cost_per_process:
            return ServerFull(), _nothing
        self.held += cost
        self.by_client[client] = client_holds + cost
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.held -= cost
            left = self.by_client.get(client, 0) - cost
            if left > 0:
                self.by_client[client] = left
            else:
                self.by_client.pop(client, None)

        return None, release


def _nothing() -> None:
    return None
