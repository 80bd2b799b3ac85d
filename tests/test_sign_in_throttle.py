"""Failed sign-ins are limited per login and per address, sign-ups per address: over a
limit, RATE_LIMITED (HTTP 429) with retryAfter, and never a lockout that outlasts it."""

import asyncio
from contextlib import asynccontextmanager

import httpx

from tests.gateway_client import error_of, gateway

PASSWORD = "correct horse battery"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token } }"
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { token } }"


@asynccontextmanager
async def from_address(client: httpx.AsyncClient, address: str):
    """Another client of the same app, connecting from `address`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    other = httpx.ASGITransport(app=transport.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as c:
        yield c


async def register(client, handle: str) -> httpx.Response:
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": PASSWORD,
            "displayName": handle,
        }
    }
    return await client.post("/graphql", json={"query": REGISTER, "variables": variables})


async def login(client, handle: str, password: str) -> httpx.Response:
    variables = {"i": {"login": handle, "password": password}}
    return await client.post("/graphql", json={"query": LOGIN, "variables": variables})


def code_of(response: httpx.Response) -> str | None:
    errors = response.json().get("errors")
    return errors[0]["extensions"]["code"] if errors else None


async def test_failed_sign_ins_for_one_login_are_limited_even_with_the_right_password(
    db, tmp_path
) -> None:
    # 3 failures per login, coming back over 300 s: one every 100 s.
    async with gateway(db, tmp_path, signin_failures_per_login=3, signin_window=300) as client:
        assert code_of(await register(client, "ada")) is None
        for _ in range(3):
            assert code_of(await login(client, "ada", "wrong password!")) == "UNAUTHENTICATED"
        limited = await login(client, "ada", PASSWORD)
        assert limited.status_code == 429
        error = error_of(limited)
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 95 <= error["extensions"]["retryAfter"] <= 100
        assert int(limited.headers["retry-after"]) == error["extensions"]["retryAfter"]
        assert "for this login" in error["message"]
        async with from_address(client, "10.0.0.9") as elsewhere:
            refused = await login(elsewhere, "ADA", PASSWORD)
            assert code_of(refused) == "RATE_LIMITED", "the login's limit holds from anywhere"
        assert code_of(await register(client, "bob")) is None
        assert code_of(await login(client, "bob", PASSWORD)) is None, "other logins are free"


async def test_right_passwords_give_their_attempt_back(db, tmp_path) -> None:
    async with gateway(db, tmp_path, signin_failures_per_login=2) as client:
        await register(client, "cleo")
        for _ in range(5):
            assert code_of(await login(client, "cleo", PASSWORD)) is None


async def test_concurrent_guesses_cannot_pass_the_limit_together(db, tmp_path) -> None:
    async with gateway(db, tmp_path, signin_failures_per_login=3) as client:
        await register(client, "dora")
        answers = await asyncio.gather(
            *(login(client, "dora", f"guess number {n}") for n in range(10))
        )
    codes = sorted(code_of(answer) for answer in answers)
    assert codes == ["RATE_LIMITED"] * 7 + ["UNAUTHENTICATED"] * 3


async def test_the_wait_ends_and_the_right_password_works_again(db, tmp_path) -> None:
    # Two failures at once, one more each second: an attacker delays, never locks out.
    async with gateway(db, tmp_path, signin_failures_per_login=2, signin_window=2) as client:
        await register(client, "emil")
        for _ in range(2):
            await login(client, "emil", "wrong password!")
        assert code_of(await login(client, "emil", PASSWORD)) == "RATE_LIMITED"
        await asyncio.sleep(1.1)
        assert code_of(await login(client, "emil", PASSWORD)) is None


async def test_failed_sign_ins_from_one_address_are_limited_across_logins(db, tmp_path) -> None:
    async with gateway(db, tmp_path, signin_failures_per_address=4) as client:
        await register(client, "fay")
        for n in range(4):
            answer = await login(client, f"nobody_{n}", "wrong password!")
            assert code_of(answer) == "UNAUTHENTICATED"
        limited = error_of(await login(client, "fay", PASSWORD))
        assert limited["extensions"]["code"] == "RATE_LIMITED"
        assert "from here" in limited["message"]
        async with from_address(client, "10.0.0.7") as elsewhere:
            assert code_of(await login(elsewhere, "fay", PASSWORD)) is None


async def test_sign_ups_from_one_address_are_limited(db, tmp_path) -> None:
    async with gateway(db, tmp_path, signups_per_address=3, signup_window=3600) as client:
        for n in range(3):
            assert code_of(await register(client, f"new_{n}")) is None
        limited = await register(client, "new_3")
        assert limited.status_code == 429
        error = error_of(limited)
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 1195 <= error["extensions"]["retryAfter"] <= 1200  # one sign-up per 20 min
        # A taken handle probes accounts: it counts like any other attempt.
        async with from_address(client, "10.0.0.8") as elsewhere:
            for _ in range(3):
                assert code_of(await register(elsewhere, "new_0")) == "CONFLICT"
            assert code_of(await register(elsewhere, "new_9")) == "RATE_LIMITED"
        me = await login(client, "new_0", PASSWORD)
        assert code_of(me) is None, "signing in is not signing up"
