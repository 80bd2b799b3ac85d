"""The wiring: GraphQL over HTTP, GraphiQL, health routes and request ids, through ASGI."""

import logging

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import make_content, make_user


@pytest.fixture
async def client(db, tmp_path):
    settings = Settings(secret_key=TEST_SECRET, data_dir=tmp_path, database_url="unused")
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield client


async def test_post_and_get_run_queries(db, client) -> None:
    author = await make_user(db, handle="ada")
    await make_content(db, author, title="Hello")
    query = "{ contents(first: 5) { edges { node { title author { handle } } } } }"
    posted = await client.post("/graphql", json={"query": query})
    got = await client.get("/graphql", params={"query": query})
    expected = {
        "data": {"contents": {"edges": [{"node": {"title": "Hello", "author": {"handle": "ada"}}}]}}
    }
    assert posted.status_code == got.status_code == 200
    assert posted.json() == got.json() == expected


async def test_browsers_get_the_offline_explorer(client) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/graphql/assets/graphiql.min.js" in page.text
    assert "https://" not in page.text and "http://" not in page.text
    script = await client.get("/graphql/assets/graphiql.min.js")
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_every_response_carries_a_request_id(client) -> None:
    response = await client.post("/graphql", json={"query": "{ tags { totalCount } }"})
    assert len(response.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    forged = await client.get("/healthz", headers={"X-Request-ID": "bad id\nINFO fake"})
    assert forged.headers["x-request-id"] != "bad id\nINFO fake"


async def test_invalid_documents_get_bad_user_input(client) -> None:
    for query in ("{ contents { nope } }", "{ contents(first: 5 { id } }"):
        body = (await client.post("/graphql", json={"query": query})).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    client, monkeypatch, caplog
) -> None:
    from execution.binding import Binder

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(Binder, "_tags", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        response = await client.post("/graphql", json={"query": "{ tags { totalCount } }"})
    (error,) = response.json()["errors"]
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    logged = [r for r in caplog.records if response.headers["x-request-id"] in r.getMessage()]
    assert logged and "hunter2" in str(logged[0].exc_info[1])


async def test_the_explorers_default_query_runs_for_anonymous_viewers(db, client) -> None:
    from gateway.explorer import DEFAULT_QUERY

    author = await make_user(db)
    await make_content(db, author, tags=("python",))
    body = (await client.post("/graphql", json={"query": DEFAULT_QUERY})).json()
    assert "errors" not in body, body
    assert body["data"]["contents"]["totalCount"] == 1


REGISTER = """mutation { register(input: {handle: "ada", email: "ada@example.com",
  password: "correct horse battery", displayName: "Ada"}) { token } }"""


async def test_a_token_makes_requests_the_viewers_and_logout_ends_it(client) -> None:
    token = (await client.post("/graphql", json={"query": REGISTER})).json()["data"]["register"][
        "token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    me = await client.post("/graphql", json={"query": "{ viewer { handle email } }"}, headers=auth)
    assert me.json() == {"data": {"viewer": {"handle": "ada", "email": "ada@example.com"}}}
    assert (
        await client.post("/graphql", json={"query": "mutation { logout }"}, headers=auth)
    ).json() == {"data": {"logout": True}}
    revoked = await client.post("/graphql", json={"query": "{ viewer { handle } }"}, headers=auth)
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"] == "Bearer"
    (error,) = revoked.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "revoked" in error["message"]


async def test_a_bad_token_is_never_treated_as_anonymous(client) -> None:
    for header in ("Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await client.post(
            "/graphql",
            json={"query": "{ contents { totalCount } }"},
            headers={"Authorization": header},
        )
        assert response.status_code == 401, header
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in response.json()
