"""A signed-in read checks its token in its own statement once the process knows the
viewer (gateway/auth.py SignedInViewers). What the process remembers is only a guess:
a logout, a role change or a deletion made behind its back (another process, or SQL)
must still count from the very next request, with nothing of the old identity's answer
sent."""

import pytest
import sqlalchemy as sa

from db.session import Database, StatementCounter, create_engine
from resolvers.ids import encode_id
from tests.conftest import TOKENS
from tests.factories import make_content, make_user
from tests.gateway_client import gateway, graphql_view

DRAFT = "query($id: ID!) { content(id: $id) { title status } }"
CONTENTS = "{ contents(first: 5) { edges { node { title } } } }"


@pytest.fixture
async def world(fresh_database_url):
    engine = create_engine(fresh_database_url)
    db = Database(engine)
    ada = await make_user(db, handle="ada")
    boss = await make_user(db, handle="boss", role="ADMIN")
    draft = await make_content(db, ada, title="unfinished", status="DRAFT")
    await make_content(db, ada, title="out there")
    yield fresh_database_url, db, ada, boss, draft
    await engine.dispose()


def _bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(user.id, user.token_version).token}"}


async def _sql(db: Database, statement: str, **values) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(sa.text(statement), values)


async def test_a_logout_elsewhere_refuses_the_next_read_and_sends_nothing(world, tmp_path):
    url, db, ada, _, _ = world
    headers = _bearer(ada)
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        known = await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
        assert known.status_code == 200 and known.json()["data"]["contents"]["edges"]
        await _sql(
            db, "UPDATE users SET token_version = token_version + 1 WHERE id = :id", id=ada.id
        )
        database = graphql_view(client).database
        with StatementCounter(database) as counter:
            refused = await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
        assert refused.status_code == 401, refused.text
        assert "data" not in refused.json()
        assert "revoked" in refused.json()["errors"][0]["message"]
        assert refused.headers["www-authenticate"] == "Bearer"
        # The checked read, then the check that says why.
        assert counter.count == 2
        again = await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
        assert again.status_code == 401


async def test_a_known_viewer_reads_in_one_statement(world, tmp_path):
    url, _, ada, _, _ = world
    headers = _bearer(ada)
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        database = graphql_view(client).database
        counts = []
        for _ in range(3):
            with StatementCounter(database) as counter:
                response = await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
            assert response.status_code == 200 and "errors" not in response.json()
            counts.append(counter.count)
    assert counts == [2, 1, 1]


async def test_a_demoted_admin_is_answered_as_a_member_at_once(world, tmp_path):
    url, db, _, boss, draft = world
    headers = _bearer(boss)
    variables = {"id": encode_id("Content", draft.id)}
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        seen = await client.post(
            "/graphql", json={"query": DRAFT, "variables": variables}, headers=headers
        )
        assert seen.json()["data"]["content"] == {"title": "unfinished", "status": "DRAFT"}
        await _sql(db, "UPDATE users SET role = 'MEMBER' WHERE id = :id", id=boss.id)
        hidden = await client.post(
            "/graphql", json={"query": DRAFT, "variables": variables}, headers=headers
        )
        assert hidden.status_code == 200
        assert hidden.json()["data"]["content"] is None


async def test_a_promoted_member_is_answered_as_an_admin_at_once(world, tmp_path):
    url, db, _, _, draft = world
    reader = await make_user(db, handle="reader")
    headers = _bearer(reader)
    variables = {"id": encode_id("Content", draft.id)}
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        hidden = await client.post(
            "/graphql", json={"query": DRAFT, "variables": variables}, headers=headers
        )
        assert hidden.json()["data"]["content"] is None
        await _sql(db, "UPDATE users SET role = 'ADMIN' WHERE id = :id", id=reader.id)
        seen = await client.post(
            "/graphql", json={"query": DRAFT, "variables": variables}, headers=headers
        )
        assert seen.json()["data"]["content"] == {"title": "unfinished", "status": "DRAFT"}


async def test_a_revoked_token_changes_nothing_with_a_mutation(world, tmp_path):
    url, db, ada, _, _ = world
    headers = _bearer(ada)
    update = "mutation($p: PreferencesInput!) { updatePreferences(input: $p) { languages } }"
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
        await _sql(
            db, "UPDATE users SET token_version = token_version + 1 WHERE id = :id", id=ada.id
        )
        refused = await client.post(
            "/graphql",
            json={"query": update, "variables": {"p": {"languages": ["fr"]}}},
            headers=headers,
        )
        assert refused.status_code == 401, refused.text
    async with db.engine.connect() as conn:
        languages = await conn.scalar(
            sa.text("SELECT languages FROM preferences WHERE user_id = :id"), {"id": ada.id}
        )
    assert languages in (None, [])


async def test_a_deleted_user_is_refused_even_when_the_document_is_refused_first(world, tmp_path):
    url, db, ada, _, _ = world
    headers = _bearer(ada)
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        await client.post("/graphql", json={"query": CONTENTS}, headers=headers)
        await _sql(db, "DELETE FROM users WHERE id = :id", id=ada.id)
        for query in (CONTENTS, "{ contents(first: 5) { nope } }", "{ viewer { handle } }"):
            refused = await client.post("/graphql", json={"query": query}, headers=headers)
            assert refused.status_code == 401, (query, refused.text)
