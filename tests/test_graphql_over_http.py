"""GraphQL over HTTP: media types by Accept, status codes that go with them, gzip."""

import pytest

from tests.factories import make_content, make_user
from tests.gateway_client import error_of, gateway

NEW = "application/graphql-response+json"
OK = {"query": "{ tags { totalCount } }"}
INVALID = {"query": "{ tags { nope } }"}


@pytest.fixture
async def client(db, tmp_path):
    async with gateway(db, tmp_path, max_depth=4) as client:
        yield client


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (NEW, NEW),
        (f"{NEW}, application/json;q=0.9", NEW),
        (f"application/json, {NEW}", NEW),
        (f"application/json, {NEW};q=0.5", "application/json"),
        (f"application/*;q=0.5, {NEW}", NEW),
        ("text/html, application/xhtml+xml, */*;q=0.8", "application/json"),
    ],
)
async def test_the_media_type_follows_accept(client, accept, expected) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.post("/graphql", json=OK, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected
    assert response.json() == {"data": {"tags": {"totalCount": 0}}}


@pytest.mark.parametrize("accept", ["text/xml", "application/xml, text/html", f"{NEW};q=0"])
async def test_an_accept_nothing_satisfies_gets_406(client, accept) -> None:
    response = await client.post("/graphql", json=OK, headers={"Accept": accept})
    assert response.status_code == 406
    assert NEW in error_of(response)["message"]


async def test_a_request_that_never_executes_is_4xx_with_the_new_media_type(client) -> None:
    too_deep = {"query": "{ contents { edges { node { author { handle } } } } }"}
    for body, code in ((INVALID, "BAD_USER_INPUT"), (too_deep, "QUERY_TOO_COMPLEX")):
        new = await client.post("/graphql", json=body, headers={"Accept": NEW})
        assert new.status_code == 400, new.text
        assert "data" not in new.json()
        assert error_of(new)["extensions"]["code"] == code
        # application/json keeps 200 for GraphQL errors, as clients of it expect
        old = await client.post("/graphql", json=body, headers={"Accept": "application/json"})
        assert old.status_code == 200
        assert "data" not in old.json()


async def test_an_executed_request_is_200_even_with_errors(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ notifications { totalCount } }"}, headers={"Accept": NEW}
    )
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert error_of(response)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bad_token_is_401_in_either_media_type(client) -> None:
    for accept in (NEW, "application/json"):
        response = await client.post(
            "/graphql", json=OK, headers={"Accept": accept, "Authorization": "Bearer nope"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"].split(";")[0] == accept


async def test_get_serves_queries_in_either_media_type(client) -> None:
    response = await client.get("/graphql", params=OK, headers={"Accept": NEW})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(NEW)
    assert response.json() == {"data": {"tags": {"totalCount": 0}}}


async def test_strawberrys_own_refusals_are_json_too(client) -> None:
    broken = await client.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert error_of(broken)["extensions"]["code"] == "BAD_USER_INPUT"
    empty = await client.post("/graphql", json={})
    assert empty.status_code == 400
    assert "query" in error_of(empty)["message"].lower()


async def test_large_responses_are_gzipped_for_clients_that_accept_it(db, client) -> None:
    author = await make_user(db)
    for n in range(30):
        await make_content(db, author, title=f"A title long enough to matter {n}")
    query = {"query": "{ contents(first: 30) { edges { node { title } } } }"}
    large = await client.post("/graphql", json=query, headers={"Accept-Encoding": "gzip"})
    assert large.headers["content-encoding"] == "gzip"
    assert len(large.json()["data"]["contents"]["edges"]) == 30
    plain = await client.post("/graphql", json=query, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    small = await client.post("/graphql", json=OK, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers, "small responses are not worth it"


async def test_clients_that_accept_brotli_get_it_and_others_get_gzip(db, client) -> None:
    author = await make_user(db)
    for n in range(30):
        await make_content(db, author, title=f"A title long enough to matter {n}")
    query = {"query": "{ contents(first: 30) { edges { node { title } } } }"}
    plain = await client.post("/graphql", json=query, headers={"Accept-Encoding": "identity"})
    for accept, coding in [
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("br;q=0, gzip", "gzip"),
        ("gzip", "gzip"),
    ]:
        response = await client.post("/graphql", json=query, headers={"Accept-Encoding": accept})
        assert response.headers["content-encoding"] == coding, accept
        assert "accept-encoding" in response.headers["vary"].lower()
        # httpx decodes br and gzip: the same answer, in fewer bytes on the wire.
        assert response.json() == plain.json(), accept
        assert response.num_bytes_downloaded < plain.num_bytes_downloaded / 3, accept
    small = await client.post("/graphql", json=OK, headers={"Accept-Encoding": "br"})
    assert "content-encoding" not in small.headers, "small responses are not worth it"
