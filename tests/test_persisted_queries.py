"""Automatic persisted queries (Apollo's protocol) and trusted-documents mode."""

import json

import pytest

from gateway.persisted_queries import sha256_of
from tests.gateway_client import error_of, gateway

QUERY = "{ tags { totalCount } }"
SHA = sha256_of(QUERY)


def persisted(sha: str = SHA) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


async def test_apq_round_trip_over_post(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        unknown = await client.post("/graphql", json={"extensions": persisted()})
        assert unknown.status_code == 200
        error = error_of(unknown)
        assert error["message"] == "PersistedQueryNotFound"
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

        registered = await client.post("/graphql", json={"query": QUERY, "extensions": persisted()})
        assert registered.json() == {"data": {"tags": {"totalCount": 0}}}

        by_hash = await client.post("/graphql", json={"extensions": persisted()})
        assert by_hash.json() == {"data": {"tags": {"totalCount": 0}}}


async def test_apq_round_trip_over_get(db, tmp_path) -> None:
    extensions = json.dumps(persisted())
    async with gateway(db, tmp_path) as client:
        unknown = await client.get("/graphql", params={"extensions": extensions})
        assert error_of(unknown)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = await client.get("/graphql", params={"query": QUERY, "extensions": extensions})
        assert registered.json() == {"data": {"tags": {"totalCount": 0}}}
        # curl and browsers send Accept: */*; a hash alone still runs the query, not GraphiQL
        by_hash = await client.get(
            "/graphql", params={"extensions": extensions}, headers={"Accept": "*/*"}
        )
        assert by_hash.json() == {"data": {"tags": {"totalCount": 0}}}


async def test_a_hash_that_does_not_match_its_query_registers_nothing(db, tmp_path) -> None:
    wrong = sha256_of("{ contents { totalCount } }")
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql", json={"query": QUERY, "extensions": persisted(wrong)}
        )
        error = error_of(response)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "does not match" in error["message"]
        later = await client.post("/graphql", json={"extensions": persisted(wrong)})
        assert error_of(later)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_an_invalid_query_is_not_registered(db, tmp_path) -> None:
    invalid = "{ tags { nope } }"
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql", json={"query": invalid, "extensions": persisted(sha256_of(invalid))}
        )
        assert error_of(response)["extensions"]["code"] == "BAD_USER_INPUT"
        later = await client.post("/graphql", json={"extensions": persisted(sha256_of(invalid))})
        assert error_of(later)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": SHA}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not-hex"}},
        {"persistedQuery": "yes"},
    ],
)
async def test_a_malformed_persisted_query_is_bad_user_input(db, tmp_path, extensions) -> None:
    async with gateway(db, tmp_path) as client:
        response = await client.post("/graphql", json={"extensions": extensions})
        assert error_of(response)["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_store_is_bounded(db, tmp_path) -> None:
    queries = ["{ tags { totalCount } }", "{ contents { totalCount } }", "{ viewer { handle } }"]
    async with gateway(db, tmp_path, persisted_queries_size=2) as client:
        for query in queries:
            body = {"query": query, "extensions": persisted(sha256_of(query))}
            assert "errors" not in (await client.post("/graphql", json=body)).json()
        first = await client.post("/graphql", json={"extensions": persisted(sha256_of(queries[0]))})
        assert error_of(first)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        last = await client.post("/graphql", json={"extensions": persisted(sha256_of(queries[2]))})
        assert last.json() == {"data": {"viewer": None}}


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({SHA: QUERY}))
    return path


async def test_trusted_documents_run_by_hash_or_exact_text(db, tmp_path, manifest) -> None:
    async with gateway(db, tmp_path, trusted_documents=manifest) as client:
        by_hash = await client.post("/graphql", json={"extensions": persisted()})
        assert by_hash.json() == {"data": {"tags": {"totalCount": 0}}}
        by_text = await client.post("/graphql", json={"query": QUERY})
        assert by_text.json() == {"data": {"tags": {"totalCount": 0}}}


async def test_trusted_documents_mode_refuses_everything_else(db, tmp_path, manifest) -> None:
    other = "{ contents { totalCount } }"
    async with gateway(db, tmp_path, trusted_documents=manifest) as client:
        for body in (
            {"query": other},
            {"extensions": persisted(sha256_of(other))},
            # APQ registration does not open a way in
            {"query": other, "extensions": persisted(sha256_of(other))},
            {"query": other + " "},
        ):
            response = await client.post("/graphql", json=body)
            error = error_of(response)
            assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", body
            assert "only trusted documents" in error["message"]
            assert "data" not in response.json()


async def test_trusted_documents_bind_websocket_operations_too(db, tmp_path, manifest) -> None:
    from tests.conftest import GraphQLClient
    from tests.gateway_client import graphql_view

    async with gateway(db, tmp_path, trusted_documents=manifest) as client:
        schema = graphql_view(client).schema
    direct = GraphQLClient(db)
    direct.schema = schema
    assert (await direct.execute(QUERY)).data == {"tags": {"totalCount": 0}}
    refused = await direct.execute("{ contents { totalCount } }")
    assert refused.errors[0].extensions["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert refused.data is None


def test_a_manifest_whose_hash_does_not_match_is_refused_at_start(tmp_path) -> None:
    from gateway.persisted_queries import TrustedDocuments

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({sha256_of("{ a }"): QUERY}))
    with pytest.raises(ValueError, match="is not the sha256 of its document"):
        TrustedDocuments.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        TrustedDocuments.load(path)
