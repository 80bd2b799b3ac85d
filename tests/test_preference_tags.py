"""Preferences name tags by name: what comes back must not tell a tag someone else already
created (even only on a draft) from a new one, and the stored preferences never hold a tag
both followed and muted."""

from sqlalchemy import text

from db.tag_ids import tag_id
from resolvers.ids import encode_id
from tests.gateway_client import gateway

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { token } }"
SAVE = """mutation($i: PreferencesInput!) { updatePreferences(input: $i) {
  followedTags { tag { id name } } mutedTags { id name } } }"""
READ = "{ viewer { preferences { followedTags { tag { name } } mutedTags { name } } } }"


async def post(client, query, variables=None, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables or {}}
    return (await client.post("/graphql", json=body, headers=headers)).json()


async def member(client, handle: str) -> str:
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": "correct horse battery",
            "displayName": handle,
        }
    }
    return str((await post(client, REGISTER, variables))["data"]["register"]["token"])


async def test_tag_ids_in_preferences_do_not_tell_existing_tags_from_new_ones(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        writer, prober = await member(client, "writer"), await member(client, "prober")
        for n in range(3):  # tags that exist, and a draft that is nobody else's business
            await post(
                client,
                f'mutation {{ createContent(input: {{title: "t", body: "b", tags: ["old-{n}"]}}) {{ id }} }}',
                token=writer,
            )
        await post(
            client,
            'mutation { createContent(input: {title: "Plans", body: "b", tags: ["secret-plan"]}) { id } }',
            token=writer,
        )
        names = ["secret-plan", "never-used-before", "old-1"]
        saved = await post(
            client, SAVE, {"i": {"followedTags": [{"tag": n, "weight": 1} for n in names]}}, prober
        )
    ids = {
        t["tag"]["name"]: t["tag"]["id"] for t in saved["data"]["updatePreferences"]["followedTags"]
    }
    # Each id is a function of its name alone: the same whether the tag existed, on a draft
    # or in use, or was created by this very call.
    assert ids == {name: encode_id("Tag", tag_id(name)) for name in names}


async def test_the_database_and_the_seed_agree_on_tag_ids(db) -> None:
    names = ["python", "a", "3d-printing", "x" * 40]
    async with db.session() as session:
        result = await session.exec(
            text("SELECT name, gateway_tag_id(name) FROM unnest(CAST(:n AS text[])) AS name"),
            params={"n": names},
        )
        assert dict(result.all()) == {name: tag_id(name) for name in names}


async def test_muting_a_followed_tag_in_a_later_call_is_refused(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        token = await member(client, "picky")
        await post(client, SAVE, {"i": {"followedTags": [{"tag": "python", "weight": 0.5}]}}, token)
        refused = await post(client, SAVE, {"i": {"mutedTags": ["rust", "Python"]}}, token)
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "mutedTags"
        assert "#python is followed" in error["message"]
        stored = await post(client, READ, token=token)
    assert stored["data"]["viewer"]["preferences"] == {
        "followedTags": [{"tag": {"name": "python"}}],
        "mutedTags": [],
    }, "nothing changed"


async def test_following_a_muted_tag_in_a_later_call_is_refused(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        token = await member(client, "choosy")
        await post(client, SAVE, {"i": {"mutedTags": ["go"]}}, token)
        refused = await post(
            client, SAVE, {"i": {"followedTags": [{"tag": "go", "weight": 1}]}}, token
        )
        (error,) = refused["errors"]
        assert error["extensions"]["field"] == "followedTags"
        assert "#go is muted" in error["message"]
        # Moving a tag from one list to the other in one call is fine.
        moved = await post(
            client,
            SAVE,
            {"i": {"followedTags": [{"tag": "go", "weight": 1}], "mutedTags": []}},
            token,
        )
    assert "errors" not in moved
    assert moved["data"]["updatePreferences"]["mutedTags"] == []
