"""The account pages in a real browser (headless Chromium), on a real `gateway serve`
with no SMTP configured: the newcomer's setup, where mail goes to .eml files in the
data folder and links are logged. Sign up and confirm the address, reset a forgotten
password, unsubscribe: all by following the emails' links."""

import email
import email.policy
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import Chromium, Page
from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess
from tests.mail_server import link_in

pytestmark = pytest.mark.slow

REGISTER = """
mutation($handle: String!) {
  register(input: {handle: $handle, email: "%s@example.com", password: "first password 1",
                   displayName: "Reader"}) { token }
}
"""


class Site:
    def __init__(self, server: GatewayProcess, browser: Chromium, folder: Path) -> None:
        self.server = server
        self.browser = browser
        self.mail = folder / "mail"

    def register(self, handle: str) -> str:
        data = self.server.graphql(REGISTER.replace("%s", handle), {"handle": handle})
        return str(data["register"]["token"])

    def email_to(self, handle: str, subject: str, timeout: float = 20) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in sorted(self.mail.glob("*.eml")):
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                if f"{handle}@example.com" in str(message["To"]) and message["Subject"] == subject:
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no email {subject!r} to {handle} in {self.mail}")

    def query(self, query: str, token: str, variables: dict[str, Any] | None = None) -> Any:
        return self.server.graphql(query, variables, token=token)


@pytest.fixture(scope="module")
async def site(server_url, template_url, tmp_path_factory) -> AsyncIterator[Site]:
    folder = tmp_path_factory.mktemp("site")
    databases = FreshDatabases(server_url)
    url = await databases.create()
    server = GatewayProcess(url, TEST_SECRET, folder / "gateway.log")
    browser = None
    try:
        server.wait_ready()
        browser = Chromium(folder / "chromium")
        yield Site(server, browser, folder)
    finally:
        if browser is not None:
            browser.close()
        server.stop()
        await databases.drop_all()


@pytest.fixture
async def page(site) -> AsyncIterator[Page]:
    opened = await site.browser.page()
    yield opened
    await opened.close()


async def _looks_right(page: Page, title: str) -> None:
    """Plain and accessible: a language, a title, one heading, named controls."""
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert (await page.evaluate("document.title")).startswith(title)
    assert await page.evaluate("[...document.querySelectorAll('h1')].map(h => h.textContent)") == [
        title
    ]
    unnamed = [
        (role, name)
        for role, name in await page.accessible()
        if role in ("button", "textbox") and not name
    ]
    assert unnamed == [], "every button and field has an accessible name"


async def test_a_newcomer_confirms_their_address_by_following_the_emailed_link(site, page) -> None:
    token = site.register("ada")
    message = site.email_to("ada", "Confirm your email address")
    link = link_in(message)
    assert link.startswith(f"{site.server.url}/account/verify-email?token=")
    assert link in site.server.log_holding(link), "the link is logged for the developer"

    await page.goto(link)
    await _looks_right(page, "Confirm your email address")
    assert "@ada" in await page.text()
    assert ("button", "Confirm my address") in await page.accessible()
    await page.press_button("Confirm my address")
    assert "ada@example.com is confirmed" in await page.text()
    assert site.query("{ viewer { emailVerified } }", token) == {"viewer": {"emailVerified": True}}

    await page.goto(link)
    assert "This link is not valid" in await page.text(), "the link works once"


async def test_a_forgotten_password_is_reset_through_the_emailed_form(site, page) -> None:
    old_token = site.register("bea")
    site.server.graphql('mutation { requestPasswordReset(email: "bea@example.com") }')
    link = link_in(site.email_to("bea", "Reset your password"))

    await page.goto(link)
    await _looks_right(page, "Choose a new password")
    names = await page.accessible()
    assert ("textbox", "New password") in names
    assert ("textbox", "New password, again") in names

    await page.type_into("#new-password", "a new password 2")
    await page.type_into("#confirm-password", "a different one 3")
    await page.press_button("Set my new password")
    assert "The two passwords differ." in await page.text()
    assert await page.evaluate("document.querySelector('[role=alert]').id") == "form-error"

    await page.type_into("#new-password", "short")
    await page.type_into("#confirm-password", "short")
    await page.press_button("Set my new password")
    assert "at least 10 characters" in await page.text()

    await page.type_into("#new-password", "a new password 2")
    await page.type_into("#confirm-password", "a new password 2")
    await page.press_button("Set my new password")
    assert "Your new password is set" in await page.text()

    login = 'mutation($p: String!) { login(input: {login: "bea", password: $p}) { token } }'
    assert site.server.graphql(login, {"p": "a new password 2"})["login"]["token"]
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{site.server.url}/graphql",
            json={"query": "{ viewer { handle } }"},
            headers={"Authorization": f"Bearer {old_token}"},
        )
    assert revoked.status_code == 401, "tokens from before the reset are revoked"
    await page.goto(link)
    assert "This link is not valid" in await page.text(), "the link works once"


async def test_a_reader_unsubscribes_from_the_emailed_link_without_signing_in(site, page) -> None:
    cy_token = site.register("cyd")
    verify = link_in(site.email_to("cyd", "Confirm your email address"))
    site.server.graphql(
        "mutation($t: String!) { verifyEmail(token: $t) { handle } }",
        {"t": verify.split("token=")[1]},
    )
    follower = site.register("dan")
    site.query('mutation { follow(handle: "cyd") { handle } }', follower)
    message = site.email_to("cyd", "Reader started following you")
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>")

    await page.goto(unsubscribe)
    await _looks_right(page, "Unsubscribe")
    assert "new followers" in await page.text()
    await page.press_button("Unsubscribe")
    assert "You will get no more emails about new followers." in await page.text()
    settings = site.query("{ viewer { preferences { email { newFollower } } } }", cy_token)
    assert settings["viewer"]["preferences"]["email"] == {"newFollower": "NEVER"}
