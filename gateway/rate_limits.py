"""Per-viewer rate limits: a token bucket per signed-in viewer (per client address for
anonymous requests), charged each query's cost, so one expensive query counts as
much as the many cheap ones it equals.

These buckets live in one process; gateway/shared_rate_limits.py settles them with
every other process through Postgres, so several workers and replicas share one budget.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# A request refused for its client's budget (RATE_LIMITED) is answered this late: a
# client that retries at once instead of waiting Retry-After (at least 1 s) then sends
# one request a second per connection, not thousands that each cost the gateway a
# refusal. Clients that wait as told lose nothing.
REFUSAL_DELAY_SECONDS = 1.0
# Enough for every client an instance sees at once; the least recently seen bucket is
# dropped first, which only forgives a client that has been quiet the longest.
MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        *,
        capacity: float,
        refill_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            raise ValueError("rate limit capacity and refill rate must be positive")
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def settle(self, key: str, tokens: float) -> None:
        """What the bucket holds now, as learned from elsewhere (the shared store)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = _Bucket(tokens=min(tokens, self.capacity), updated=now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens, bucket.updated = min(tokens, self.capacity), now

    def charge(self, key: str, cost: float) -> int | None:
        """Takes `cost` from `key`'s bucket and returns None, or, when the bucket holds
        too little, takes nothing and returns the whole seconds until it will hold enough."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.capacity, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.refill_per_second)
            bucket.updated = now
        # A cost above the capacity could never be paid; it waits for a full bucket.
        cost = min(cost, self.capacity)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        return max(1, math.ceil((cost - bucket.tokens) / self.refill_per_second))


def rate_key(viewer_id: int | None, client_host: str | None) -> str:
    if viewer_id is not None:
        return f"viewer:{viewer_id}"
    return f"address:{client_host or 'unknown'}"
