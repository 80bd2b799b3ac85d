"""Inputs no client should send, which used to end in HTTP 500 or INTERNAL_SERVER_ERROR
with a traceback in the log: each gets a clear 4xx / BAD_USER_INPUT, or null / NOT_FOUND
like any other missing thing."""

import base64
import gzip
import logging
import zlib

import pytest

from resolvers.ids import encode_id
from tests.factories import make_content, make_user
from tests.gateway_client import error_of, gateway

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { token } }"


def raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def no_errors_logged(caplog):
    caplog.set_level(logging.ERROR)
    yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def post(client, query, variables=None, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables or {}}
    return await client.post("/graphql", json=body, headers=headers)


async def member(client, handle: str) -> str:
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": "correct horse battery",
            "displayName": handle,
        }
    }
    return str((await post(client, REGISTER, variables)).json()["data"]["register"]["token"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'"x"', "not str"),
        (b"1", "not int"),
        (b"null", "not null"),
        (b"true", "not bool"),
        (b'{"query": "{ viewer { id } }"}\xff', "not valid JSON in UTF-8"),
        (b'{"query": "{ viewer { id } }", "variables": {"a": "\\ud800"}}', "not valid JSON"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    db, tmp_path, no_errors_logged, body, says
) -> None:
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    error = error_of(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert says in error["message"]


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
async def test_a_compressed_body_is_decoded(db, tmp_path, encoding, compress) -> None:
    body = compress(b'{"query": "{ contents(first: 1) { totalCount } }"}')
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"contents": {"totalCount": 0}}}


async def test_a_compressed_body_must_fit_the_body_limit_once_decoded(db, tmp_path) -> None:
    padding = " " * 5_000
    bomb = gzip.compress(('{"query": "{ viewer { id } }"' + padding + "}").encode())
    assert len(bomb) < 1_000
    async with gateway(db, tmp_path, max_body_bytes=4_096) as client:
        response = await client.post(
            "/graphql",
            content=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert response.status_code == 413
    assert error_of(response)["message"] == "request body exceeds the limit of 4,096 bytes"


@pytest.mark.parametrize(
    ("encoding", "body", "status", "says"),
    [
        ("br", b"\x0b\x02\x80{}\x03", 415, "Content-Encoding br is not accepted"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}")), 415, "is not accepted"),
        ("gzip", b"not gzip at all", 400, "not valid gzip"),
        ("gzip", gzip.compress(b'{"query": "{ viewer { id } }"}')[:-10], 400, "ends before"),
    ],
)
async def test_a_body_that_cannot_be_decoded_is_refused_saying_why(
    db, tmp_path, no_errors_logged, encoding, body, status, says
) -> None:
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
    assert response.status_code == status
    assert says in error_of(response)["message"]


BIG_IDS = [raw_id(f"Content:{n}") for n in (2**63, 2**63 - 1 + 2**64, 10**30)]


@pytest.mark.parametrize("global_id", BIG_IDS)
async def test_ids_past_the_largest_key_name_nothing(
    db, tmp_path, no_errors_logged, global_id
) -> None:
    async with gateway(db, tmp_path) as client:
        token = await member(client, "prober")
        found = await post(
            client,
            "query($id: ID!) { node(id: $id) { id } content(id: $id) { id } }",
            {"id": global_id},
        )
        assert found.json() == {"data": {"node": None, "content": None}}
        for mutation in ("react(contentId: $id)", "publishContent(id: $id)"):
            response = await post(
                client, f"mutation($id: ID!) {{ {mutation} {{ id }} }}", {"id": global_id}, token
            )
            assert error_of(response)["extensions"]["code"] == "NOT_FOUND", mutation
        marked = await post(
            client,
            "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
            {"ids": [raw_id(f"Notification:{2**63}")]},
            token,
        )
        assert marked.json() == {"data": {"markNotificationsRead": 0}}


async def test_each_object_has_one_id_spelling(db, tmp_path, no_errors_logged) -> None:
    author = await make_user(db)
    content = await make_content(db, author, title="Only one way in")
    canonical = encode_id("Content", content.id)
    digits = str(content.id)
    spellings = (
        {
            raw_id(f"Content:00{digits}"),
            raw_id(f"Content:+{digits}"),
            raw_id(f"Content: {digits}"),
            raw_id(f"Content:{digits}\n"),
            raw_id(
                f"Content:{digits[0]}_{digits[1:]}" if len(digits) > 1 else f"Content:{digits}_0"
            ),
            raw_id("Content:" + "".join(chr(0x660 + int(d)) for d in digits)),  # Arabic-Indic
            base64.urlsafe_b64encode(f"Content:{digits}  ".encode()).decode(),
            canonical + "====",
            canonical[:4] + " " + canonical[4:],
        }
        - {canonical}
    )
    query = "query($id: ID!) { content(id: $id) { title } node(id: $id) { id } }"
    async with gateway(db, tmp_path) as client:
        assert (await post(client, query, {"id": canonical})).json()["data"]["content"] == {
            "title": "Only one way in"
        }
        for spelling in spellings:
            body = (await post(client, query, {"id": spelling})).json()
            assert body == {"data": {"content": None, "node": None}}, spelling


NUL = "a\x00b"


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("query($v: String!) { search(query: $v) { totalCount } }", {"v": NUL}),
        ("query($v: String!) { user(handle: $v) { id } }", {"v": NUL}),
        (
            "query($v: String!) { contents(filter: {authorHandle: $v}) { totalCount } }",
            {"v": NUL},
        ),
        ("query($v: [String!]) { contents(filter: {tags: $v}) { totalCount } }", {"v": [NUL]}),
        ("query($v: String) { contents(filter: {language: $v}) { totalCount } }", {"v": NUL}),
        (
            "mutation($v: LoginInput!) { login(input: $v) { token } }",
            {"v": {"login": NUL, "password": "whatever it is"}},
        ),
        (
            "mutation($v: RegisterInput!) { register(input: $v) { token } }",
            {
                "v": {
                    "handle": "nul_user",
                    "email": "n@example.com",
                    "password": NUL * 6,
                    "displayName": "n",
                }
            },
        ),
        ('{ search(query: "a\\u0000b") { totalCount } }', {}),
        ('{ user(handle: "a\\u0000") { id } }', {}),
    ],
)
async def test_a_nul_character_in_text_is_bad_user_input(
    db, tmp_path, no_errors_logged, document, variables
) -> None:
    async with gateway(db, tmp_path) as client:
        error = error_of(await post(client, document, variables))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "NUL character (U+0000)" in error["message"]


async def test_a_nul_character_in_new_content_is_bad_user_input(
    db, tmp_path, no_errors_logged
) -> None:
    async with gateway(db, tmp_path) as client:
        token = await member(client, "nul_writer")
        document = "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }"
        error = error_of(await post(client, document, {"i": {"title": "t", "body": NUL}}, token))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`$i.body`" in error["message"]
