"""Sign-up, sign-in, sign-out, and the tokens they hand out."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from db.tables import User
from gateway.auth import Tokens, viewer_from_header
from resolvers.errors import Unauthenticated
from tests.conftest import TEST_SECRET, TOKENS

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { token expiresAt viewer { handle displayName email role } }
}
"""
LOGIN = "mutation($input: LoginInput!) { login(input: $input) { token viewer { handle } } }"


def _input(**overrides):
    return {
        "handle": "ada",
        "email": "ada@example.com",
        "password": "correct horse battery",
        "displayName": "Ada Lovelace",
    } | overrides


async def test_register_creates_a_member_and_signs_them_in(gql, db) -> None:
    data = await gql.data(REGISTER, {"input": _input(handle="Ada", email="ADA@Example.com")})
    payload = data["register"]
    assert payload["viewer"] == {
        "handle": "ada",
        "displayName": "Ada Lovelace",
        "email": "ada@example.com",
        "role": "MEMBER",
    }
    viewer = await viewer_from_header(f"Bearer {payload['token']}", tokens=TOKENS, db=db)
    assert viewer.signed_in and viewer.role == "MEMBER"
    expires = datetime.fromisoformat(payload["expiresAt"])
    assert expires > datetime.now(UTC)
    async with db.session() as session:
        stored = (await session.exec(select(User).where(User.handle == "ada"))).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "correct horse" not in stored.password_hash


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"handle": "ab"}, "handle", "3 to 30"),
        ({"handle": "no spaces"}, "handle", "a-z"),
        ({"handle": "admin"}, "handle", "reserved"),
        ({"email": "not-an-email"}, "email", "name@example.com"),
        ({"password": "short"}, "password", "at least 10"),
        ({"password": "adalovelace", "handle": "adalovelace"}, "password", "not be your handle"),
        ({"displayName": "   "}, "displayName", "must not be empty"),
        ({"displayName": "x" * 81}, "displayName", "at most 80"),
    ],
)
async def test_register_rejects_bad_input_naming_the_field(
    gql, db, overrides, field, words
) -> None:
    result = await gql.execute(REGISTER, {"input": _input(**overrides)})
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert f"`{field}`" in error.message and words in error.message
    async with db.session() as session:
        assert (await session.exec(select(User))).all() == [], "nothing written"


async def test_taken_handle_or_email_is_a_conflict(gql) -> None:
    await gql.data(REGISTER, {"input": _input()})
    same_handle = await gql.execute(REGISTER, {"input": _input(email="other@example.com")})
    same_email = await gql.execute(REGISTER, {"input": _input(handle="other")})
    assert same_handle.errors[0].extensions["code"] == "CONFLICT"
    assert "`handle`" in same_handle.errors[0].message
    assert same_email.errors[0].extensions["code"] == "CONFLICT"
    assert "`email`" in same_email.errors[0].message


async def test_two_concurrent_registrations_of_one_handle_give_one_conflict(
    fresh_database_url,
) -> None:
    """Two connections, real commits: the unique index, not a pre-check, decides."""
    from db.session import Database, create_engine
    from tests.conftest import GraphQLClient

    engine = create_engine(fresh_database_url)
    try:
        client = GraphQLClient(Database(engine))
        results = await asyncio.gather(
            client.execute(REGISTER, {"input": _input(email="one@example.com")}),
            client.execute(REGISTER, {"input": _input(email="two@example.com")}),
        )
        codes = sorted(
            "ok" if r.errors is None else r.errors[0].extensions["code"] for r in results
        )
        assert codes == ["CONFLICT", "ok"]
    finally:
        await engine.dispose()


async def test_login_by_handle_or_email(gql) -> None:
    await gql.data(REGISTER, {"input": _input()})
    for login in ("ada", "ADA@example.com", "@ada"):
        data = await gql.data(
            LOGIN, {"input": {"login": login, "password": "correct horse battery"}}
        )
        assert data["login"]["viewer"]["handle"] == "ada"


async def test_login_failures_do_not_say_which_part_was_wrong(gql) -> None:
    await gql.data(REGISTER, {"input": _input()})
    wrong_password = await gql.execute(
        LOGIN, {"input": {"login": "ada", "password": "wrong password!"}}
    )
    unknown_user = await gql.execute(
        LOGIN, {"input": {"login": "nobody", "password": "correct horse battery"}}
    )
    for result in (wrong_password, unknown_user):
        (error,) = result.errors
        assert error.message == "invalid login or password"
        assert error.extensions["code"] == "UNAUTHENTICATED"


async def test_login_with_an_unknown_name_still_does_the_password_work(gql, monkeypatch) -> None:
    """The decoy hash check is what makes both failures take the same time."""
    from tests.conftest import PASSWORDS

    checked = []
    original = PASSWORDS.verify

    async def spy(stored_hash, password):
        checked.append(stored_hash)
        return await original(stored_hash, password)

    monkeypatch.setattr(PASSWORDS, "verify", spy)
    await gql.execute(LOGIN, {"input": {"login": "nobody", "password": "whatever12345"}})
    assert checked == [None], "the password check ran even though nobody matched"


async def test_outdated_password_hashes_are_upgraded_at_login(gql, db) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash("correct horse battery")
    await gql.data(REGISTER, {"input": _input()})
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.handle == "ada"))).one()
        user.password_hash = weak
        session.add(user)
        await session.commit()
    await gql.data(LOGIN, {"input": {"login": "ada", "password": "correct horse battery"}})
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.handle == "ada"))).one()
    assert user.password_hash != weak and user.password_hash.startswith("$argon2id$")


async def test_logout_revokes_every_token_issued_so_far(gql, db) -> None:
    first = (await gql.data(REGISTER, {"input": _input()}))["register"]["token"]
    second = (
        await gql.data(LOGIN, {"input": {"login": "ada", "password": "correct horse battery"}})
    )["login"]["token"]
    viewer = await viewer_from_header(f"Bearer {second}", tokens=TOKENS, db=db)
    assert (await gql.data("mutation { logout }", viewer=viewer)) == {"logout": True}
    for token in (first, second):
        with pytest.raises(Unauthenticated, match="revoked"):
            await viewer_from_header(f"Bearer {token}", tokens=TOKENS, db=db)
    fresh = (
        await gql.data(LOGIN, {"input": {"login": "ada", "password": "correct horse battery"}})
    )["login"]["token"]
    assert (await viewer_from_header(f"Bearer {fresh}", tokens=TOKENS, db=db)).signed_in


async def test_expired_forged_and_malformed_tokens_are_unauthenticated(gql, db) -> None:
    await gql.data(REGISTER, {"input": _input()})
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.handle == "ada"))).one()
    expired = TOKENS.issue(user.id, user.token_version, now=datetime.now(UTC) - timedelta(hours=2))
    forged = Tokens("another secret entirely, 0123456789abcdef", timedelta(hours=1)).issue(
        user.id, user.token_version
    )
    for header, words in [
        (f"Bearer {expired.token}", "expired"),
        (f"Bearer {forged.token}", "not valid"),
        ("Bearer not.a.token", "not valid"),
        (f"Token {TOKENS.issue(user.id, 0).token}", "Bearer"),
        ("Bearer", "Bearer"),
    ]:
        with pytest.raises(Unauthenticated, match=words):
            await viewer_from_header(header, tokens=TOKENS, db=db)
    assert TEST_SECRET


def test_a_token_checked_before_still_expires_and_a_forged_one_is_never_taken(
    monkeypatch,
) -> None:
    from gateway import auth

    tokens = Tokens(TEST_SECRET, timedelta(hours=1))
    issued = tokens.issue(7, 3)
    assert tokens.claims(issued.token)[:2] == (7, 3)
    assert tokens.claims(issued.token)[:2] == (7, 3)
    header, claims, signature = issued.token.split(".")
    with pytest.raises(Unauthenticated, match="not valid"):
        tokens.claims(f"{header}.{claims}.{signature[::-1]}")

    class TwoHoursLater(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            return datetime.now(tz) + timedelta(hours=2)

    monkeypatch.setattr(auth, "datetime", TwoHoursLater)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.claims(issued.token)


async def test_mutations_that_need_a_viewer_say_so(gql) -> None:
    for document in (
        "mutation { logout }",
        'mutation { follow(handle: "ada") { handle } }',
        "mutation { markNotificationsRead }",
        "{ notifications { totalCount } }",
    ):
        result = await gql.execute(document)
        (error,) = result.errors
        assert error.extensions["code"] == "UNAUTHENTICATED", document
        assert "Sign in" in error.message
