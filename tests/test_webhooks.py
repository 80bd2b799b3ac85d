"""Webhooks against a real HTTP receiver: ADMIN only, signed per Standard Webhooks (checked
with the `standardwebhooks` package), only public data, retried with the same
webhook-id, disabled after repeated failures, private addresses refused."""

import asyncio
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook as Verifier

from resolvers.outreach import Outreach
from resolvers.viewer import Viewer
from tests.conftest import TOKENS, GraphQLClient
from tests.delivery import OUTREACH, make_worker
from tests.factories import make_user
from tests.gateway_client import gateway
from tests.webhook_receiver import WebhookReceiver

CREATE = """
mutation($url: String!, $events: [WebhookEvent!]!) {
  createWebhook(url: $url, events: $events) { secret webhook { id url events active } }
}
"""
LIST = "{ webhooks { id url active lastDeliveryAt lastError } }"
CREATE_CONTENT = """
mutation($title: String!, $visibility: Visibility) {
  createContent(input: {title: $title, body: "A *body*", tags: ["python"], visibility: $visibility}) { id }
}
"""
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { status } }"
UPDATE = """
mutation($id: ID!, $input: UpdateContentInput!) { updateContent(id: $id, input: $input) { id } }
"""
EVENTS = ["CONTENT_PUBLISHED", "CONTENT_UPDATED", "CONTENT_ARCHIVED", "CONTENT_DELETED"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def receiving(receiver) -> WebhookReceiver:
    receiver.requests.clear()
    receiver.statuses.clear()
    receiver.always = None
    return receiver


async def _people(db) -> tuple[Viewer, Viewer]:
    admin = await make_user(db, handle="root_admin", role="ADMIN")
    author = await make_user(db, handle="ada")
    return Viewer.admin(admin.id), Viewer.member(author.id)  # type: ignore[arg-type]


async def _published(client, author: Viewer, title: str, visibility: str = "PUBLIC") -> str:
    created = await client.data(
        CREATE_CONTENT, {"title": title, "visibility": visibility}, viewer=author
    )
    content_id = created["createContent"]["id"]
    await client.data(PUBLISH, {"id": content_id}, viewer=author)
    return str(content_id)


async def test_only_admins_manage_webhooks_and_see_them_as_nodes(db, receiving) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, member = await _people(db)
    anonymous = await client.execute(CREATE, {"url": receiving.url, "events": EVENTS})
    assert anonymous.errors[0].extensions["code"] == "UNAUTHENTICATED"
    refused = await client.execute(CREATE, {"url": receiving.url, "events": EVENTS}, viewer=member)
    assert refused.errors[0].extensions["code"] == "FORBIDDEN"
    listed = await client.execute(LIST, viewer=member)
    assert listed.errors[0].extensions["code"] == "FORBIDDEN"

    created = await client.data(CREATE, {"url": receiving.url, "events": EVENTS}, viewer=admin)
    secret = created["createWebhook"]["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    webhook = created["createWebhook"]["webhook"]
    assert webhook["active"] is True and webhook["events"] == EVENTS
    assert (await client.data(LIST, viewer=admin))["webhooks"][0]["id"] == webhook["id"]
    node = "query($id: ID!) { node(id: $id) { id ... on Webhook { url } } }"
    by_id = {"id": webhook["id"]}
    assert (await client.data(node, by_id, viewer=admin))["node"]["url"] == receiving.url
    assert (await client.data(node, by_id, viewer=member))["node"] is None

    delete = "mutation($id: ID!) { deleteWebhook(id: $id) }"
    refused = await client.execute(delete, by_id, viewer=member)
    assert refused.errors[0].extensions["code"] == "FORBIDDEN"
    assert (await client.data(delete, by_id, viewer=admin)) == {"deleteWebhook": webhook["id"]}
    gone = await client.execute(delete, by_id, viewer=admin)
    assert gone.errors[0].extensions["code"] == "NOT_FOUND"
    none = await client.execute(CREATE, {"url": receiving.url, "events": []}, viewer=admin)
    assert none.errors[0].extensions["field"] == "events"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
async def test_private_addresses_are_refused(db, url) -> None:
    strict = GraphQLClient(db, outreach=Outreach(allow_private_webhooks=False))
    admin, _ = await _people(db)
    result = await strict.execute(CREATE, {"url": url, "events": EVENTS}, viewer=admin)
    (error,) = result.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "url"}
    assert "private" in error.message


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https://user:pw@example.com/", "no url"])
async def test_urls_that_are_not_http_endpoints_are_refused(db, url) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, _ = await _people(db)
    result = await client.execute(CREATE, {"url": url, "events": EVENTS}, viewer=admin)
    assert result.errors[0].extensions["field"] == "url"


async def test_deliveries_verify_with_standardwebhooks_and_carry_only_public_data(
    db, receiving, mail
) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, author = await _people(db)
    created = await client.data(CREATE, {"url": receiving.url, "events": EVENTS}, viewer=admin)
    verifier = Verifier(created["createWebhook"]["secret"])

    public_id = await _published(client, author, "Hello <world>")
    await _published(client, author, "Members only", visibility="MEMBERS")
    await _published(client, author, "Private", visibility="PRIVATE")
    await client.data(UPDATE, {"id": public_id, "input": {"visibility": "PRIVATE"}}, viewer=author)
    await make_worker(db, mail.url).drain()

    published, updated = receiving.wait_for(2)
    assert len(receiving.requests) == 2, "members-only and private content send nothing"
    event = verifier.verify(published.body, published.headers)
    assert event["type"] == "content.published"
    assert published.headers["webhook-id"] == event["id"]
    data = event["data"]
    assert data["id"] == public_id and data["title"] == "Hello <world>"
    assert data["bodyHtml"] == "<p>A <em>body</em></p>\n"
    assert data["tags"] == ["python"] and data["author"]["handle"] == "ada"
    assert "email" not in orjson.dumps(data).decode()
    gone = verifier.verify(updated.body, updated.headers)
    assert gone["type"] == "content.updated"
    assert gone["data"] == {"id": public_id, "status": "PUBLISHED", "visibility": "PRIVATE"}

    tampered = dict(published.headers)
    with pytest.raises(Exception, match="signature"):
        verifier.verify(published.body.replace(b"Hello", b"Bye"), tampered)


async def test_registration_is_announced_without_the_address(db, receiving, mail) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, _ = await _people(db)
    created = await client.data(
        CREATE, {"url": receiving.url, "events": ["USER_REGISTERED"]}, viewer=admin
    )
    await client.data(
        'mutation { register(input: {handle: "newbie", email: "newbie@example.com",'
        ' password: "long enough pass", displayName: "New"}) { token } }'
    )
    await make_worker(db, mail.url).drain()
    (received,) = receiving.wait_for(1)
    event = Verifier(created["createWebhook"]["secret"]).verify(received.body, received.headers)
    assert event["type"] == "user.registered"
    assert event["data"]["handle"] == "newbie"
    assert b"newbie@example.com" not in received.body


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id(db, receiving, mail) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, author = await _people(db)
    created = await client.data(CREATE, {"url": receiving.url, "events": EVENTS}, viewer=admin)
    receiving.statuses.extend([500])
    await _published(client, author, "Retry me")
    worker = make_worker(db, mail.url, retry_seconds=0.05)
    await worker.drain()
    listed = (await client.data(LIST, viewer=admin))["webhooks"][0]
    assert listed["lastError"] == "the endpoint answered HTTP 500"
    await asyncio.sleep(0.1)
    await worker.drain()
    first, second = receiving.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verifier = Verifier(created["createWebhook"]["secret"])
    assert verifier.verify(second.body, second.headers)["data"]["title"] == "Retry me"
    listed = (await client.data(LIST, viewer=admin))["webhooks"][0]
    assert listed["active"] is True and listed["lastError"] is None
    assert listed["lastDeliveryAt"] is not None
    await worker.drain()
    assert len(receiving.requests) == 2, "delivered once it succeeded"


async def test_an_endpoint_that_keeps_failing_is_disabled(db, receiving, mail) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, author = await _people(db)
    await client.data(CREATE, {"url": receiving.url, "events": EVENTS}, viewer=admin)
    receiving.always = 503
    await _published(client, author, "First")
    await _published(client, author, "Second")
    # One delivery at a time: a delivery under way when the endpoint is disabled
    # still completes (or fails), which would make the count below vary.
    worker = make_worker(db, mail.url, retry_seconds=0.02, webhook_disable_after=3, batch_size=1)
    for _ in range(10):
        await worker.drain()
        await asyncio.sleep(0.06)
    listed = (await client.data(LIST, viewer=admin))["webhooks"][0]
    assert listed["active"] is False
    assert listed["lastError"] == "the endpoint answered HTTP 503"
    assert len(receiving.requests) == 3, "no delivery after it was disabled"
    async with db.session() as session:
        statuses = (
            await session.exec(sa.text("SELECT status FROM outbox WHERE channel = 'WEBHOOK'"))
        ).all()
    assert sorted(s[0] for s in statuses) == ["DEAD", "DEAD"]
    await _published(client, author, "Third")
    await worker.drain()
    assert len(receiving.requests) == 3, "a disabled endpoint gets nothing new"


async def test_addresses_are_checked_again_when_delivering(db, receiving, mail) -> None:
    """Created while private addresses were allowed (or before DNS changed), delivered
    where they are not: nothing reaches the address."""
    client = GraphQLClient(db, outreach=OUTREACH)
    admin, author = await _people(db)
    url = f"http://localhost:{receiving.port}/hooks"
    await client.data(CREATE, {"url": url, "events": EVENTS}, viewer=admin)
    await _published(client, author, "Not for localhost")
    await make_worker(db, mail.url, allow_private=False).drain()
    listed = (await client.data(LIST, viewer=admin))["webhooks"][0]
    assert "private" in listed["lastError"]
    assert receiving.requests == []


@pytest.mark.parametrize(("setting", "kept"), [(None, False), ("drop", False), ("keep", True)])
async def test_payloads_follow_the_remote_images_setting(
    db, tmp_path, receiving, mail, setting, kept
) -> None:
    """A receiver shows `bodyHtml` to readers too: a tracking pixel left in the payload
    would track them as it would the API's readers, so the gateway's one setting decides
    for both."""
    admin, author = await _people(db)
    settings = {"webhook_allow_private_addresses": True, "rate_limit_shared": False}
    if setting is not None:
        settings["remote_images"] = setting
    async with gateway(db, tmp_path, **settings) as client:

        async def run(query: str, variables: dict, viewer: Viewer) -> dict:
            token = TOKENS.issue(viewer.id, 0).token  # type: ignore[arg-type]
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = response.json()
            assert "errors" not in body, body
            return dict(body["data"])

        created = await run(CREATE, {"url": receiving.url, "events": EVENTS}, admin)
        content = await run(
            'mutation($body: String!) { createContent(input: {title: "Pixel", body: $body})'
            " { id } }",
            {"body": "![x](https://tracker.example/p.png)"},
            author,
        )
        content_id = content["createContent"]["id"]
        await run(PUBLISH, {"id": content_id}, author)
        api_html = (
            await run(
                "query($id: ID!) { content(id: $id) { bodyHtml } }", {"id": content_id}, admin
            )
        )["content"]["bodyHtml"]
    await make_worker(db, mail.url).drain()
    (published,) = receiving.wait_for(1)
    event = Verifier(created["createWebhook"]["secret"]).verify(published.body, published.headers)
    html = event["data"]["bodyHtml"]
    assert html == api_html
    if kept:
        assert '<img src="https://tracker.example/p.png" alt="x"' in html, html
    else:
        assert "tracker.example" not in html and html == "<p>x</p>\n"
