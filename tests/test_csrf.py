"""CSRF prevention: what a page on another site can make a browser send never runs."""

import pytest

from tests.gateway_client import error_of, gateway

REGISTER = """mutation { register(input: {handle: "eve", email: "eve@example.com",
  password: "correct horse battery", displayName: "Eve"}) { token } }"""


@pytest.fixture
async def client(db, tmp_path):
    async with gateway(db, tmp_path) as client:
        yield client


async def eve_exists(client) -> bool:
    body = (
        await client.post("/graphql", json={"query": '{ user(handle: "eve") { handle } }'})
    ).json()
    return body["data"]["user"] is not None


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_post_a_browser_sends_cross_site_is_refused(client, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=f'{{"query": {REGISTER!r}}}'.encode(), headers=headers
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cross-site request forgery" in error["message"]
    assert "application/json" in error["message"]
    assert not await eve_exists(client)


async def test_a_preflight_header_lets_a_simple_content_type_through_the_csrf_check(
    client,
) -> None:
    for header in ("apollo-require-preflight", "x-apollo-operation-name"):
        response = await client.post(
            "/graphql",
            content=b'{"query": "{ tags { totalCount } }"}',
            headers={"Content-Type": "text/plain", header: "1"},
        )
        # Past the CSRF check; the body still has to be JSON sent as such.
        assert response.status_code == 400
        assert "cross-site" not in response.text
        assert "content type" in error_of(response)["message"].lower()


async def test_json_posts_run(client) -> None:
    response = await client.post("/graphql", json={"query": REGISTER})
    assert response.status_code == 200 and response.json()["data"]["register"]["token"]
    assert await eve_exists(client)


async def test_get_runs_queries_but_not_mutations(client) -> None:
    query = await client.get("/graphql", params={"query": "{ tags { totalCount } }"})
    assert query.json() == {"data": {"tags": {"totalCount": 0}}}
    mutation = await client.get("/graphql", params={"query": REGISTER})
    assert mutation.status_code == 405
    assert mutation.headers["allow"] == "POST"
    error = error_of(mutation)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "POST" in error["message"]
    assert not await eve_exists(client)


async def test_a_subscription_over_get_is_pointed_to_the_websocket(client) -> None:
    response = await client.get(
        "/graphql", params={"query": "subscription { contentPublished { title } }"}
    )
    assert response.status_code == 405
    assert "WebSocket" in error_of(response)["message"]
