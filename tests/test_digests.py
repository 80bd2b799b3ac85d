"""Digests: the reader's top-ranked new items (the feed's ranking, access rules and
mutes) and unread notifications since the last digest, sent when due, and never
when nothing is new."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from db.tables import EmailSettings, User
from resolvers.digests import top_new_items
from resolvers.ranking import RankingWeights
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient
from tests.delivery import OUTREACH, make_worker
from tests.factories import follow, make_content, make_user, react, set_preferences
from tests.mail_server import html_of, text_of

DIGEST = "mutation { updatePreferences(input: {email: {digest: DAILY}}) { updatedAt } }"


async def _reader(db, client) -> User:
    reader = await make_user(db, handle="reader")
    async with db.session() as session:
        await session.exec(
            sa.update(User).where(User.id == reader.id).values(email_verified_at=sa.func.now())
        )
        await session.commit()
    assert reader.id is not None
    await client.data(DIGEST, viewer=Viewer.member(reader.id))
    return reader


async def test_digest_holds_the_ranked_items_a_reader_may_see_and_not_muted_ones(db, mail) -> None:
    mail.clear()
    client = GraphQLClient(db, outreach=OUTREACH)
    reader = await _reader(db, client)
    ada, bob, cy = [await make_user(db, handle=h) for h in ("ada", "bob", "cyd")]
    await follow(db, reader, ada)
    await set_preferences(
        db, reader, weights={"python": 1.0}, muted_tags=("spam",), muted_authors=(bob,)
    )
    now = datetime.now(UTC)
    ago = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    await make_content(db, ada, title="Followed and tagged", tags=("python",), at=ago(3))
    await make_content(db, cy, title="Plain public", at=ago(4))
    await make_content(db, cy, title="For members", visibility="MEMBERS", at=ago(5))
    hidden = {
        "Private": await make_content(db, cy, title="Private", visibility="PRIVATE", at=ago(1)),
        "Spam": await make_content(db, cy, title="Spam", tags=("spam",), at=ago(1)),
        "By Bob": await make_content(db, bob, title="By Bob", at=ago(1)),
        "Mine": await make_content(db, reader, title="Mine", at=ago(1)),
        "Too old": await make_content(db, ada, title="Too old", at=ago(30)),
        "Draft": await make_content(db, ada, title="Draft", status="DRAFT", at=ago(1)),
    }
    # An unread REACTION notification: reactions go to the digest by default.
    await react(db, ada, hidden["Mine"])
    async with db.session() as session:
        await session.exec(
            sa.text(
                "INSERT INTO notifications (recipient_id, kind, actor_id, content_id)"
                " VALUES (:r, 'REACTION', :a, :c)"
            ).bindparams(r=reader.id, a=ada.id, c=hidden["Mine"].id)
        )
        await session.commit()

    worker = make_worker(db, mail.url)
    assert await worker.queue_digests(everyone=True) == 1
    await worker.drain()
    (message,) = mail.to("reader@")
    assert message["Subject"] == "Your daily digest: 3 new items"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = text_of(message)
    ranked = await top_new_items(
        db,
        viewer=Viewer.member(reader.id),  # type: ignore[arg-type]
        since=now - timedelta(days=1),
        now=datetime.now(UTC),
        weights=RankingWeights(),
        limit=10,
    )
    assert len(ranked) == 3
    titles = ["Followed and tagged", "Plain public", "For members"]
    positions = [text.index(title) for title in titles]
    assert positions == sorted(positions), "in the feed's order"
    assert "Why: you follow @ada" in text
    for title in hidden:
        assert f"{title} (by" not in text, f"{title} must not be in the digest"
    assert "Ada reacted to “Mine”" in text
    assert "Ada reacted to “Mine”" in html_of(message)


async def test_no_digest_is_sent_when_nothing_is_new(db, mail) -> None:
    mail.clear()
    client = GraphQLClient(db, outreach=OUTREACH)
    reader = await _reader(db, client)
    worker = make_worker(db, mail.url)
    assert await worker.queue_digests(everyone=True) == 0
    author = await make_user(db, handle="ada")
    await make_content(db, author, title="Fresh", at=datetime.now(UTC) - timedelta(minutes=5))
    assert await worker.queue_digests(everyone=True) == 1
    assert await worker.queue_digests(everyone=True) == 0, "nothing new since that digest"
    await worker.drain()
    assert len(mail.to("reader@")) == 1
    async with db.session() as session:
        settings = await session.get(EmailSettings, reader.id)
    assert settings is not None and settings.last_digest_at is not None


async def test_a_digest_goes_out_when_due_and_is_scheduled_a_period_later(db, mail) -> None:
    client = GraphQLClient(db, outreach=OUTREACH)
    reader = await _reader(db, client)
    author = await make_user(db, handle="ada")
    await make_content(db, author, title="Fresh", at=datetime.now(UTC) - timedelta(minutes=5))
    worker = make_worker(db, mail.url)
    assert await worker.queue_digests(everyone=False) == 0, "a day away after switching on"
    async with db.session() as session:
        await session.exec(
            sa.update(EmailSettings)
            .where(EmailSettings.user_id == reader.id)
            .values(next_digest_at=sa.func.clock_timestamp() - timedelta(seconds=1))
        )
        await session.commit()
    assert await worker.queue_digests(everyone=False) == 1
    async with db.session() as session:
        settings = await session.get(EmailSettings, reader.id)
        await session.refresh(settings)
    assert settings is not None and settings.next_digest_at is not None
    assert settings.next_digest_at > datetime.now(UTC) + timedelta(hours=23)
