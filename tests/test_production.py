"""Production mode: no introspection, no GraphiQL, no hints at hidden fields, masked errors."""

import logging

import pytest

from tests.gateway_client import error_of, gateway


@pytest.fixture
async def client(db, tmp_path):
    async with gateway(db, tmp_path, env="production") as client:
        yield client


async def test_introspection_is_off(client) -> None:
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Content") { name } }'):
        response = await client.post("/graphql", json={"query": query})
        errors = response.json()["errors"]
        assert {error["extensions"]["code"] for error in errors} == {"BAD_USER_INPUT"}
        assert all("introspection" in error["message"].lower() for error in errors)
        assert "data" not in response.json()
    typename = await client.post("/graphql", json={"query": "{ __typename }"})
    assert typename.json() == {"data": {"__typename": "Query"}}


async def test_introspection_is_on_in_development(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        response = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    assert "errors" not in response.json()


async def test_there_is_no_graphiql(client) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()


async def test_validation_errors_do_not_suggest_field_names(client, db, tmp_path) -> None:
    query = {"query": "{ contnts { totalCount } }"}
    error = error_of(await client.post("/graphql", json=query))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "contents" not in error["message"]
    async with gateway(db, tmp_path) as development:
        assert "contents" in error_of(await development.post("/graphql", json=query))["message"]


async def test_an_internal_error_leaks_nothing(client, monkeypatch, caplog) -> None:
    from execution.binding import Binder

    def broken(*args, **kwargs):
        raise RuntimeError("connection string postgresql://gateway:hunter2@db/gateway")

    monkeypatch.setattr(Binder, "_tags", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        response = await client.post("/graphql", json={"query": "{ tags { totalCount } }"})
    error = error_of(response)
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    assert error["message"] == "Internal server error. Quote the requestId when reporting it."
    for secret in ("hunter2", "RuntimeError", "postgresql", "Traceback", "list_tags"):
        assert secret not in response.text
    (record,) = [r for r in caplog.records if response.headers["x-request-id"] in r.getMessage()]
    assert record.exc_info and "hunter2" in str(record.exc_info[1])
