"""Per-viewer rate limits: a token bucket charged each query's cost."""

import pytest

from gateway.rate_limits import RateLimiter, rate_key
from tests.gateway_client import error_of, gateway, graphql_view

# cost 1 + 10 x (edges 1 + node 1 + title 1) = 31
QUERY = {"query": "{ contents(first: 10) { edges { node { title } } } }"}
CHEAP = {"query": "{ viewer { handle } }"}  # cost 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_and_says_when_to_come_back() -> None:
    clock = Clock()
    limiter = RateLimiter(capacity=100, refill_per_second=10, clock=clock)
    assert limiter.charge("a", 60) is None
    assert limiter.charge("a", 60) == 2  # 40 left: 20 more take 2 s
    assert limiter.charge("b", 60) is None, "another key has its own bucket"
    clock.now += 2
    assert limiter.charge("a", 60) is None
    assert limiter.charge("a", 1000) == 10, "more than the capacity waits for a full bucket"


def test_buckets_are_bounded_by_forgetting_the_least_recently_seen() -> None:
    limiter = RateLimiter(capacity=10, refill_per_second=1, clock=Clock(), max_buckets=2)
    limiter.charge("a", 10)
    limiter.charge("b", 10)
    limiter.charge("a", 0)
    limiter.charge("c", 10)
    assert limiter.charge("a", 1) == 1, "a was seen recently and keeps its empty bucket"
    assert limiter.charge("b", 10) is None, "b was forgotten and starts full"


def test_keys_are_per_viewer_or_per_address() -> None:
    assert rate_key(7, "10.0.0.1") == rate_key(7, "10.0.0.2") == "viewer:7"
    assert rate_key(None, "10.0.0.1") != rate_key(None, "10.0.0.2")


async def token_for(client, handle: str) -> str:
    mutation = f"""mutation {{ register(input: {{handle: "{handle}", email: "{handle}@example.com",
      password: "correct horse battery", displayName: "{handle}"}}) {{ token }} }}"""
    body = (await client.post("/graphql", json={"query": mutation})).json()
    return str(body["data"]["register"]["token"])


@pytest.mark.parametrize("media_type", ["application/json", "application/graphql-response+json"])
async def test_a_viewer_over_budget_gets_429_and_others_are_unaffected(
    db, tmp_path, media_type
) -> None:
    # The budget holds two 31-cost queries; it refills far slower than the test runs.
    async with gateway(db, tmp_path, rate_limit_capacity=70, rate_limit_refill=0.5) as client:
        ada = {"Authorization": f"Bearer {await token_for(client, 'ada')}", "Accept": media_type}
        bob = {"Authorization": f"Bearer {await token_for(client, 'bob')}", "Accept": media_type}
        graphql_view(client).rate_limiter.clock = Clock()  # time stands still from here
        for _ in range(2):
            assert (await client.post("/graphql", json=QUERY, headers=ada)).status_code == 200
        limited = await client.post("/graphql", json=QUERY, headers=ada)
        assert limited.status_code == 429
        error = error_of(limited)
        assert error["extensions"]["code"] == "RATE_LIMITED"
        retry_after = error["extensions"]["retryAfter"]
        assert retry_after == int(limited.headers["retry-after"])
        assert retry_after == 46  # 70 - 2 x 31 = 8 left: 23 more at 0.5 a second
        assert "retry in 46 s" in error["message"]
        assert "data" not in limited.json()

        other = await client.post("/graphql", json=QUERY, headers=bob)
        assert other.status_code == 200 and "errors" not in other.json()
        cheap = await client.post("/graphql", json=CHEAP, headers=ada)
        assert cheap.status_code == 200, "what is left still pays for a cheaper query"


async def test_anonymous_requests_are_limited_per_client_address(db, tmp_path) -> None:
    async with gateway(db, tmp_path, rate_limit_capacity=40, rate_limit_refill=0.1) as client:
        signed_in = {"Authorization": f"Bearer {await token_for(client, 'dave')}"}
        graphql_view(client).rate_limiter.clock = Clock()
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        assert (await client.post("/graphql", json=QUERY)).status_code == 429
        assert (await client.post("/graphql", json=QUERY, headers=signed_in)).status_code == 200


async def test_a_refusal_is_answered_late_so_retrying_at_once_gains_nothing(db, tmp_path) -> None:
    import time

    async with gateway(db, tmp_path, rate_limit_capacity=40, rate_limit_refill=0.1) as client:
        graphql_view(client).rate_limiter.clock = Clock()
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        started = time.monotonic()
        refused = await client.post("/graphql", json=QUERY)
        waited = time.monotonic() - started
        answered = time.monotonic()
        assert (await client.post("/graphql", json=CHEAP)).status_code == 200
    assert refused.status_code == 429
    assert waited >= 1.0, "one refusal a second per connection, at most"
    assert time.monotonic() - answered < 1.0, "what is admitted is not held back"


async def test_shared_buckets_idle_until_full_again_are_forgotten(db) -> None:
    """What every process settles with (db/rate_limits.py); forgetting runs in the same
    transaction as spending, so if it failed no process could settle again."""
    import sqlalchemy as sa

    from db import rate_limits

    async with db.session() as session:
        await rate_limits.spend(session, {"idle": 10.0, "busy": 10.0}, capacity=100, refill=1)
        await (await session.connection()).execute(
            sa.text(
                "UPDATE rate_limit_buckets SET updated_at = now() - interval '1 hour'"
                " WHERE key = 'idle'"
            )
        )
        await rate_limits.forget_full(session, capacity=100, refill=1)
        left = await rate_limits.load_buckets(session, ["idle", "busy"], capacity=100, refill=1)
    assert list(left) == ["busy"]
    assert left["busy"] == pytest.approx(90, abs=1)
