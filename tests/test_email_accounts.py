"""Accounts reached by email, against a real SMTP server (aiosmtpd): verification,
password reset end to end, password change, rate limits, and publishing only once
verified when that is required."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from db.session import StatementCounter
from db.tables import User
from gateway.auth import viewer_from_header
from gateway.rate_limits import RateLimiter
from resolvers.errors import Unauthenticated
from resolvers.ids import encode_id
from resolvers.outreach import Outreach
from resolvers.viewer import Viewer
from tests.conftest import TOKENS, GraphQLClient
from tests.delivery import OUTREACH, PUBLIC_URL, make_worker
from tests.factories import make_content
from tests.mail_server import html_of, link_in, text_of, token_in

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { token viewer { id handle emailVerified } }
}
"""
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) { handle emailVerified } }"
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = """
mutation($t: String!, $p: String!) {
  resetPassword(token: $t, newPassword: $p) { token viewer { handle emailVerified } }
}
"""
CHANGE = """
mutation($c: String!, $n: String!) {
  changePassword(currentPassword: $c, newPassword: $n) { token }
}
"""
LOGIN = "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { token } }"
PASSWORD = "correct horse battery"


@pytest.fixture
async def client(db, mail) -> AsyncIterator[GraphQLClient]:
    mail.clear()
    yield GraphQLClient(db, outreach=OUTREACH)


async def _deliver(db, mail) -> None:
    await make_worker(db, mail.url).drain()


async def _register(client, handle: str = "ada") -> tuple[str, Viewer]:
    data = await client.data(
        REGISTER,
        {
            "input": {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": PASSWORD,
                "displayName": handle.title(),
            }
        },
    )
    token = data["register"]["token"]
    return token, await viewer_from_header(f"Bearer {token}", tokens=TOKENS, db=client.db)


async def test_register_mails_a_link_that_verifies_the_address_once(db, mail, client) -> None:
    _, viewer = await _register(client)
    me = await client.data("{ viewer { emailVerified } }", viewer=viewer)
    assert me["viewer"]["emailVerified"] is False
    await _deliver(db, mail)
    (message,) = mail.to("ada@example.com")
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"].endswith("@gateway.test>")
    assert message["List-Unsubscribe"] is None, "account mail has no unsubscribe"
    link = link_in(message)
    assert link.startswith(f"{PUBLIC_URL}/account/verify-email?token=")
    assert link in html_of(message), "the HTML part carries the same link"

    verified = await client.data(VERIFY, {"t": token_in(message)}, viewer=viewer)
    assert verified["verifyEmail"] == {"handle": "ada", "emailVerified": True}
    again = await client.execute(VERIFY, {"t": token_in(message)})
    assert again.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert "resendVerificationEmail" in again.errors[0].message


async def test_resending_verification_mails_a_new_link_until_verified(db, mail, client) -> None:
    _, viewer = await _register(client)
    resent = await client.data("mutation { resendVerificationEmail }", viewer=viewer)
    assert resent == {"resendVerificationEmail": True}
    await _deliver(db, mail)
    first, second = mail.to("ada@example.com")
    assert token_in(first) != token_in(second)
    await client.data(VERIFY, {"t": token_in(second)})
    assert await client.data("mutation { resendVerificationEmail }", viewer=viewer) == {
        "resendVerificationEmail": False
    }
    await _deliver(db, mail)
    assert len(mail.to("ada@example.com")) == 2, "nothing more once verified"


async def test_password_reset_end_to_end(db, mail, client) -> None:
    old_token, _ = await _register(client)
    await _deliver(db, mail)
    mail.clear()
    assert await client.data(REQUEST_RESET, {"e": " ADA@example.com "}) == {
        "requestPasswordReset": True
    }
    await _deliver(db, mail)
    (message,) = mail.to("ada@example.com")
    assert message["Subject"] == "Reset your password"
    assert link_in(message).startswith(f"{PUBLIC_URL}/account/reset-password?token=")

    reset = await client.data(RESET, {"t": token_in(message), "p": "a brand new secret"})
    assert reset["resetPassword"]["viewer"] == {"handle": "ada", "emailVerified": True}
    with pytest.raises(Unauthenticated):
        await viewer_from_header(f"Bearer {old_token}", tokens=TOKENS, db=db)
    new_viewer = await viewer_from_header(
        f"Bearer {reset['resetPassword']['token']}", tokens=TOKENS, db=db
    )
    assert new_viewer.signed_in
    assert (await client.execute(LOGIN, {"l": "ada", "p": PASSWORD})).errors
    assert await client.data(LOGIN, {"l": "ada", "p": "a brand new secret"})

    twice = await client.execute(RESET, {"t": token_in(message), "p": "yet another secret"})
    assert twice.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert twice.errors[0].extensions["field"] == "token"
    await _deliver(db, mail)
    assert [m["Subject"] for m in mail.to("ada@example.com")] == [
        "Reset your password",
        "Your password was changed",
    ]


async def test_reset_for_an_unknown_address_sends_nothing_and_runs_the_same_statements(
    db, mail, client
) -> None:
    await _register(client)
    await _deliver(db, mail)
    mail.clear()
    runs = []
    for address in ("ada@example.com", "nobody@example.com"):
        with StatementCounter(db) as counter:
            result = await client.data(REQUEST_RESET, {"e": address})
        assert result == {"requestPasswordReset": True}
        runs.append(counter.statements)
    assert runs[0] == runs[1], "a known and an unknown address must look the same"
    await _deliver(db, mail)
    assert len(mail.to("ada@example.com")) == 1
    assert mail.to("nobody@example.com") == []


async def test_an_expired_reset_link_does_not_work(db, mail, client) -> None:
    await _register(client)
    await client.data(REQUEST_RESET, {"e": "ada@example.com"})
    await _deliver(db, mail)
    message = mail.to("ada@example.com")[-1]
    async with db.session() as session:
        await session.exec(
            sa.text(
                "UPDATE account_tokens SET expires_at = clock_timestamp() - interval '1 second'"
                " WHERE purpose = 'RESET_PASSWORD'"
            )
        )
        await session.commit()
    result = await client.execute(RESET, {"t": token_in(message), "p": "a brand new secret"})
    assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert "expired" in result.errors[0].message


async def test_reset_rejects_a_weak_password_and_keeps_the_token_usable(db, mail, client) -> None:
    await _register(client)
    await client.data(REQUEST_RESET, {"e": "ada@example.com"})
    await _deliver(db, mail)
    token = token_in(mail.to("ada@example.com")[-1])
    weak = await client.execute(RESET, {"t": token, "p": "short"})
    assert weak.errors[0].extensions == {
        "code": "BAD_USER_INPUT",
        "field": "newPassword",
    }
    assert (await client.data(RESET, {"t": token, "p": "long enough now"}))["resetPassword"]


async def test_change_password_checks_the_current_one_and_revokes_older_tokens(
    db, mail, client
) -> None:
    old_token, viewer = await _register(client)
    wrong = await client.execute(
        CHANGE, {"c": "not my password", "n": "new secret here"}, viewer=viewer
    )
    assert wrong.errors[0].extensions["field"] == "currentPassword"
    changed = await client.data(CHANGE, {"c": PASSWORD, "n": "new secret here"}, viewer=viewer)
    with pytest.raises(Unauthenticated):
        await viewer_from_header(f"Bearer {old_token}", tokens=TOKENS, db=db)
    assert await viewer_from_header(
        f"Bearer {changed['changePassword']['token']}", tokens=TOKENS, db=db
    )
    anonymous = await client.execute(CHANGE, {"c": PASSWORD, "n": "new secret here"})
    assert anonymous.errors[0].extensions["code"] == "UNAUTHENTICATED"


async def test_password_reset_requests_are_limited_per_address_and_per_client(db, mail) -> None:
    limited = Outreach(
        public_url=PUBLIC_URL,
        link_key=b"k",
        per_address=RateLimiter(capacity=2, refill_per_second=0.001),
        per_client=RateLimiter(capacity=4, refill_per_second=0.001),
    )
    client = GraphQLClient(db, outreach=limited.for_client("10.0.0.1"))
    for _ in range(2):
        assert await client.data(REQUEST_RESET, {"e": "ada@example.com"})
    third = await client.execute(REQUEST_RESET, {"e": "ada@example.com"})
    assert third.errors[0].extensions["code"] == "RATE_LIMITED"
    assert third.errors[0].extensions["retryAfter"] > 0
    # Another address from the same client, until the client's budget is spent: the
    # refused request counted against it too.
    assert await client.data(REQUEST_RESET, {"e": "bob@example.com"})
    fifth = await client.execute(REQUEST_RESET, {"e": "eve@example.com"})
    assert fifth.errors[0].extensions["code"] == "RATE_LIMITED"
    async with db.session() as session:
        queued = (await session.exec(sa.text("SELECT count(*) FROM outbox"))).one()[0]
    assert queued == 3, "a refused request queues nothing"


async def test_unverified_accounts_may_not_publish_when_verification_is_required(
    db, mail, client
) -> None:
    strict = GraphQLClient(
        db, outreach=Outreach(public_url=PUBLIC_URL, require_verified_email=True)
    )
    _, viewer = await _register(client)
    async with db.session() as session:
        user = await session.get(User, viewer.id)
    draft = await make_content(db, user, status="DRAFT")
    publish = "mutation($id: ID!) { publishContent(id: $id) { status } }"
    content_id = encode_id("Content", draft.id)
    refused = await strict.execute(publish, {"id": content_id}, viewer=viewer)
    assert refused.errors[0].extensions["code"] == "FORBIDDEN"
    assert "Verify your email address" in refused.errors[0].message
    await _deliver(db, mail)
    await client.data(VERIFY, {"t": token_in(mail.to("ada@example.com")[0])})
    published = await strict.data(publish, {"id": content_id}, viewer=viewer)
    assert published == {"publishContent": {"status": "PUBLISHED"}}


async def test_email_verified_is_seen_by_the_owner_and_admins_only(db, mail, client) -> None:
    _, ada = await _register(client, "ada")
    _, bob = await _register(client, "bob")
    query = '{ user(handle: "ada") { emailVerified } }'
    assert (await client.data(query, viewer=ada))["user"]["emailVerified"] is False
    assert (await client.data(query, viewer=bob))["user"]["emailVerified"] is None
    assert (await client.data(query))["user"]["emailVerified"] is None
    admin = Viewer.admin(bob.id)  # type: ignore[arg-type]
    assert (await client.data(query, viewer=admin))["user"]["emailVerified"] is False
    await _deliver(db, mail)
    assert "@ada" in text_of(mail.to("ada@example.com")[0])


async def _outbox(db) -> list[tuple[str, int, str | None]]:
    async with db.session() as session:
        rows = await session.exec(sa.text("SELECT status, attempts, last_error FROM outbox"))
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_a_message_refused_for_now_is_retried_and_arrives_once(db, mail, client) -> None:
    await _register(client)
    mail.refuse = 1
    worker = make_worker(db, mail.url, retry_seconds=0.05)
    await worker.drain()
    assert mail.to("ada@example.com") == []
    [(status, attempts, error)] = await _outbox(db)
    assert (status, attempts) == ("PENDING", 1) and "451" in (error or "")
    await asyncio.sleep(0.1)
    await worker.drain()
    assert len(mail.to("ada@example.com")) == 1
    assert await _outbox(db) == [("SENT", 2, None)]


async def test_a_message_is_a_dead_letter_after_its_last_attempt(db, mail, client) -> None:
    await _register(client)
    mail.refuse = 5
    worker = make_worker(db, mail.url, retry_seconds=0.02, max_attempts=3)
    for _ in range(5):
        await worker.drain()
        await asyncio.sleep(0.1)
    [(status, attempts, _)] = await _outbox(db)
    assert (status, attempts) == ("DEAD", 3)
    mail.refuse = 0
    await worker.drain()
    assert mail.to("ada@example.com") == [], "a dead letter is not sent"


async def test_a_recipient_refused_for_good_is_a_dead_letter_at_once(db, mail, client) -> None:
    await _register(client)
    mail.refuse, mail.refusal = 1, "550 5.1.1 no such mailbox"
    try:
        await make_worker(db, mail.url).drain()
    finally:
        mail.refusal = "451 4.3.0 try again later"
    [(status, attempts, error)] = await _outbox(db)
    assert (status, attempts) == ("DEAD", 1) and "550" in (error or "")
