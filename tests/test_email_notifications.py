"""Notification emails over a real SMTP server: each kind as the reader chose
(IMMEDIATELY, DIGEST, NEVER), only to verified addresses, escaped, with a one-click
unsubscribe that works without a session; and the email settings in preferences."""

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from db.tables import User
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient
from tests.delivery import OUTREACH, PUBLIC_URL, make_worker
from tests.factories import make_content, make_user
from tests.gateway_client import gateway
from tests.mail_server import html_of, text_of

SETTINGS = (
    "{ viewer { preferences { email { newFollower reaction newContentFromFollowed digest } } } }"
)
UPDATE = """
mutation($email: EmailSettingsInput!) {
  updatePreferences(input: {email: $email}) {
    email { newFollower reaction newContentFromFollowed digest }
  }
}
"""
FOLLOW = "mutation($h: String!) { follow(handle: $h) { handle } }"
REACT = "mutation($id: ID!) { react(contentId: $id) { reactionCount } }"
CREATE = """
mutation($title: String!) {
  createContent(input: {title: $title, body: "Body", tags: ["python"]}) { id }
}
"""
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { status } }"


@pytest.fixture
async def client(db, mail) -> AsyncIterator[GraphQLClient]:
    mail.clear()
    yield GraphQLClient(db, outreach=OUTREACH)


async def _verified(db, handle: str) -> User:
    user = await make_user(db, handle=handle)
    async with db.session() as session:
        await session.exec(
            sa.update(User).where(User.id == user.id).values(email_verified_at=sa.func.now())
        )
        await session.commit()
    return user


def _as(user: User) -> Viewer:
    assert user.id is not None
    return Viewer.member(user.id)


async def test_email_settings_default_and_change_field_by_field(client, db) -> None:
    ada = await _verified(db, "ada")
    defaults = await client.data(SETTINGS, viewer=_as(ada))
    assert defaults["viewer"]["preferences"]["email"] == {
        "newFollower": "IMMEDIATELY",
        "reaction": "DIGEST",
        "newContentFromFollowed": "IMMEDIATELY",
        "digest": "OFF",
    }
    changed = await client.data(UPDATE, {"email": {"reaction": "NEVER"}}, viewer=_as(ada))
    assert changed["updatePreferences"]["email"]["reaction"] == "NEVER"
    changed = await client.data(UPDATE, {"email": {"digest": "WEEKLY"}}, viewer=_as(ada))
    assert changed["updatePreferences"]["email"] == {
        "newFollower": "IMMEDIATELY",
        "reaction": "NEVER",
        "newContentFromFollowed": "IMMEDIATELY",
        "digest": "WEEKLY",
    }
    bad = await client.execute(UPDATE, {"email": {"digest": "HOURLY"}}, viewer=_as(ada))
    assert bad.errors[0].extensions["code"] == "BAD_USER_INPUT"


async def test_immediately_and_never_are_respected_per_kind(client, db, mail) -> None:
    ada, bob = await _verified(db, "ada"), await _verified(db, "bob")
    await client.data(UPDATE, {"email": {"reaction": "IMMEDIATELY"}}, viewer=_as(ada))
    piece = await make_content(db, ada, title="Ada's piece")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(bob))
    await client.data(REACT, {"id": encode_id("Content", piece.id)}, viewer=_as(bob))
    await make_worker(db, mail.url).drain()
    assert sorted(m["Subject"] for m in mail.to("ada@")) == [
        "Bob reacted to “Ada's piece”",
        "Bob started following you",
    ]

    mail.clear()
    await client.data(
        UPDATE, {"email": {"newFollower": "NEVER", "reaction": "DIGEST"}}, viewer=_as(ada)
    )
    carol = await _verified(db, "carol")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(carol))
    await client.data(REACT, {"id": encode_id("Content", piece.id)}, viewer=_as(carol))
    await make_worker(db, mail.url).drain()
    assert mail.to("ada@") == [], "NEVER and DIGEST send nothing right away"
    notifications = await client.data("{ notifications { totalCount } }", viewer=_as(ada))
    assert notifications["notifications"]["totalCount"] == 4, "in-app notifications still come"


async def test_unverified_addresses_get_no_notification_email(client, db, mail) -> None:
    await make_user(db, handle="ada")
    bob = await _verified(db, "bob")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(bob))
    await make_worker(db, mail.url).drain()
    assert mail.to("ada@") == []


async def test_new_content_email_escapes_a_hostile_title(client, db, mail) -> None:
    ada, bob = await _verified(db, "ada"), await _verified(db, "bob")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(bob))
    hostile = '<script>alert("x")</script> & <b>bold</b>'
    created = await client.data(CREATE, {"title": hostile}, viewer=_as(ada))
    await client.data(PUBLISH, {"id": created["createContent"]["id"]}, viewer=_as(ada))
    await make_worker(db, mail.url).drain()
    (message,) = mail.to("bob@")
    html = html_of(message)
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert hostile in text_of(message), "plain text shows the title as typed"
    assert message["Subject"] == f"Ada published “{hostile}”"


async def test_one_click_unsubscribe_works_without_a_session(client, db, mail, tmp_path) -> None:
    ada, bob = await _verified(db, "ada"), await _verified(db, "bob")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(bob))
    await make_worker(db, mail.url).drain()
    (message,) = mail.to("ada@")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{PUBLIC_URL}/account/unsubscribe?token=")
    assert link in text_of(message) and link in html_of(message).replace("&amp;", "&")
    path = link.removeprefix(PUBLIC_URL)
    async with gateway(db, tmp_path) as http:
        # What a mail client sends: no cookie, no page, no CSRF token.
        posted = await http.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert posted.status_code == 200
        again = await http.post(path, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200, "a repeated one-click post is harmless"
        forged = await http.post(
            "/account/unsubscribe?token=not-a-token", data={"List-Unsubscribe": "One-Click"}
        )
        assert forged.status_code == 400
    settings = await client.data(SETTINGS, viewer=_as(ada))
    assert settings["viewer"]["preferences"]["email"]["newFollower"] == "NEVER"
    carol = await _verified(db, "carol")
    await client.data(FOLLOW, {"h": "ada"}, viewer=_as(carol))
    await make_worker(db, mail.url).drain()
    assert len(mail.to("ada@")) == 1, "no more new-follower emails"


async def test_account_page_forms_refuse_posts_without_their_token(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as http:
        for path in ("/account/verify-email", "/account/reset-password", "/account/unsubscribe"):
            response = await http.post(
                path, data={"token": "x", "new_password": "whatever password"}
            )
            assert response.status_code == 403, path
            assert "Nothing was changed" in response.text
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            cross_site = await http.post(
                "/account/verify-email", data={"token": "x", "csrf": "y"}, headers=headers
            )
            assert cross_site.status_code == 403
        page = await http.get("/account/reset-password?token=unknown")
        assert page.status_code == 400
        assert "This link is not valid" in page.text
        assert page.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
