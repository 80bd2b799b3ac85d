"""One member cannot flood another's notifications: repeats of one notification (same
actor, kind and content) within the collapse window are written once."""

import pytest

from tests.gateway_client import gateway

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { token viewer { handle } } }"
NOTIFICATIONS = "{ notifications { totalCount edges { node { kind actor { handle } } } } }"


async def gql(client, query, variables=None, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
    ).json()
    assert "errors" not in body, body
    return body["data"]


async def member(client, handle: str) -> str:
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": "correct horse battery",
            "displayName": handle,
        }
    }
    return str((await gql(client, REGISTER, variables))["register"]["token"])


async def published_by(client, token: str) -> str:
    created = await gql(
        client,
        'mutation { createContent(input: {title: "Hello", body: "there"}) { id } }',
        token=token,
    )
    content_id = created["createContent"]["id"]
    await gql(
        client, "mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": content_id}, token
    )
    return str(content_id)


async def test_following_and_unfollowing_fifty_times_leaves_one_notification(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        victim, pest = await member(client, "victim"), await member(client, "pest")
        for _ in range(50):
            await gql(client, 'mutation { follow(handle: "victim") { id } }', token=pest)
            await gql(client, 'mutation { unfollow(handle: "victim") { id } }', token=pest)
        # ...and in one aliased request
        pairs = " ".join(
            f'f{n}: follow(handle: "victim") {{ id }} u{n}: unfollow(handle: "victim") {{ id }}'
            for n in range(10)
        )
        await gql(client, f"mutation {{ {pairs} }}", token=pest)
        inbox = (await gql(client, NOTIFICATIONS, token=victim))["notifications"]
    assert inbox["totalCount"] == 1
    assert inbox["edges"][0]["node"] == {"kind": "NEW_FOLLOWER", "actor": {"handle": "pest"}}


async def test_reacting_and_unreacting_leaves_one_notification_per_content(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        author, fan = await member(client, "author"), await member(client, "fan")
        first, second = await published_by(client, author), await published_by(client, author)
        for content_id in (first, second):
            for _ in range(20):
                variables = {"id": content_id}
                await gql(
                    client, "mutation($id: ID!) { react(contentId: $id) { id } }", variables, fan
                )
                await gql(
                    client, "mutation($id: ID!) { unreact(contentId: $id) { id } }", variables, fan
                )
        inbox = (await gql(client, NOTIFICATIONS, token=author))["notifications"]
    assert inbox["totalCount"] == 2, "one for each content"


async def test_other_actors_are_not_collapsed_into_one(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        star = await member(client, "star")
        for handle in ("one_fan", "two_fan"):
            token = await member(client, handle)
            await gql(client, 'mutation { follow(handle: "star") { id } }', token=token)
        inbox = (await gql(client, NOTIFICATIONS, token=star))["notifications"]
    assert inbox["totalCount"] == 2


@pytest.mark.parametrize(("hours", "expected"), [(0, 3), (24, 1)])
async def test_the_collapse_window_is_a_setting(db, tmp_path, hours, expected) -> None:
    async with gateway(db, tmp_path, notification_collapse_hours=hours) as client:
        victim, pest = await member(client, "victim"), await member(client, "pest")
        for _ in range(3):
            await gql(client, 'mutation { follow(handle: "victim") { id } }', token=pest)
            await gql(client, 'mutation { unfollow(handle: "victim") { id } }', token=pest)
        inbox = (await gql(client, NOTIFICATIONS, token=victim))["notifications"]
    assert inbox["totalCount"] == expected
