"""The delivery worker: sends what the outbox holds, queues digests when they are due.
It runs inside `gateway serve` (each process one) and as `gateway worker`; any number
share one database.

Sending once: a worker claims due rows (FOR UPDATE SKIP LOCKED, so no two workers take
the same row) and commits the claim before it sends anything; after each message it
commits SENT at once. A worker that restarts finds everything it had sent marked so,
and sends none of it again. A claim lasts `lease_seconds`, and a worker starts no send
it could not finish within its claim; only a message whose send was under way when its
worker died is sent again once the claim runs out, with the same Message-ID (or
webhook-id), which is what receivers deduplicate by (docs/email.md)."""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson

from db import email_settings, outbox
from db import webhooks as webhook_queries
from db.embedded import asyncpg_dsn
from db.outbox import Delivery
from db.ranking import RankingWeights
from db.session import Database
from gateway.mail_render import message_id, render_email, sender_domain
from gateway.mailer import Mailer, MailError, MailSession
from gateway.webhook_client import WebhookClient, WebhookError
from resolvers.digests import build_digest
from resolvers.email_settings import DIGEST_PERIODS
from resolvers.outbound import Skip, compose_email
from resolvers.outreach import Outreach

log = logging.getLogger("gateway.worker")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    max_attempts: int = 8
    # The first retry waits this long, each next one twice as long, up to max_retry_seconds.
    retry_seconds: float = 30.0
    max_retry_seconds: float = 6 * 3600.0
    lease_seconds: float = 300.0
    poll_seconds: float = 5.0
    batch_size: int = 20
    webhook_disable_after: int = 15
    retention_days: float = 7.0
    mail_from: str = "Content gateway <gateway@localhost>"

    def backoff(self, attempts: int) -> float:
        return min(self.retry_seconds * 2.0 ** max(attempts - 1, 0), self.max_retry_seconds)


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        *,
        outreach: Outreach,
        mailer: Mailer,
        webhooks: WebhookClient,
        settings: DeliverySettings,
        ranking: RankingWeights,
        listen_url: str | None = None,
    ) -> None:
        self.db = db
        self.outreach = outreach
        self.mailer = mailer
        self.webhooks = webhooks
        self.settings = settings
        self.ranking = ranking
        self.listen_url = listen_url
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._domain = sender_domain(settings.mail_from)
        self._wake = {"EMAIL": asyncio.Event(), "WEBHOOK": asyncio.Event()}
        self._tasks: list[asyncio.Task[None]] = []

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        loops: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("EMAIL", lambda: self.deliver_due("EMAIL")),
            ("WEBHOOK", lambda: self.deliver_due("WEBHOOK")),
        ]
        self._tasks = [asyncio.create_task(self._loop(c, work)) for c, work in loops]
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        if self.listen_url:
            self._tasks.append(asyncio.create_task(self._listen(self.listen_url)))
        log.info("delivery worker %s started", self.name)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.webhooks.close()
        log.info("delivery worker %s stopped", self.name)

    async def run(self) -> None:
        """Until cancelled (`gateway worker`)."""
        self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def _loop(self, channel: str, work: Callable[[], Awaitable[object]]) -> None:
        wake = self._wake[channel]
        pause = self.settings.poll_seconds
        while True:
            wake.clear()
            try:
                await work()
                pause = self.settings.poll_seconds
            except MailError as error:
                # The server is unreachable: the messages were handed back untouched;
                # wait longer each time instead of burning their attempts.
                pause = min(max(pause * 2, self.settings.retry_seconds), 300.0)
                log.warning("%s; trying again in %.1f s", error, pause)
            except Exception:
                log.exception("delivery worker: %s deliveries failed; retrying", channel.lower())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=pause)

    async def _housekeeping(self) -> None:
        """Digests when due; now and then, forgets old outbox rows and expired tokens."""
        from db.account_tokens import delete_expired_tokens

        rounds = 0
        while True:
            try:
                if await self.queue_digests(everyone=False):
                    self._wake["EMAIL"].set()
                if rounds % 720 == 0:
                    async with self.db.session() as session:
                        await outbox.delete_finished(
                            session, older_than_days=self.settings.retention_days
                        )
                        await delete_expired_tokens(session)
                        await session.commit()
            except Exception:
                log.exception("delivery worker: housekeeping failed; retrying")
            rounds += 1
            await asyncio.sleep(self.settings.poll_seconds)

    async def _listen(self, url: str) -> None:
        """Wakes the loops when a transaction adds to the outbox; polling covers the
        rest (retries coming due, a lost connection)."""

        def wake(*_: object) -> None:
            for event in self._wake.values():
                event.set()

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(
                    asyncpg_dsn(url),
                    timeout=5,
                    server_settings={"application_name": "gateway delivery"},
                )
                await conn.add_listener(outbox.CHANNEL, wake)
                wake()
                while True:
                    await asyncio.sleep(15)
                    await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("delivery worker: LISTEN connection failed (%s); polling", error)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(self.settings.poll_seconds)

    # -- one pass --------------------------------------------------------------------

    async def drain(self) -> int:
        """Sends everything due now; how many rows were handled."""
        return await self.deliver_due("EMAIL") + await self.deliver_due("WEBHOOK")

    async def deliver_due(self, channel: str) -> int:
        handled = 0
        while True:
            async with self.db.session() as session:
                batch = await outbox.claim(
                    session,
                    channel=channel,
                    worker=self.name,
                    limit=self.settings.batch_size,
                    lease_seconds=self.settings.lease_seconds,
                )
                await session.commit()
            if not batch:
                return handled
            if channel == "EMAIL":
                await self._email_batch(batch)
            else:
                await asyncio.gather(*(self._guarded_webhook(d) for d in batch))
            handled += len(batch)

    async def _email_batch(self, batch: list[Delivery]) -> None:
        pending = list(batch)
        try:
            async with self.mailer.session() as mail:
                while pending:
                    delivery = pending[0]
                    # Started only if it can finish inside the claim: otherwise another
                    # worker could take the row over while this one is still sending.
                    left = (delivery.claimed_until - datetime.now(UTC)).total_seconds()
                    if left < self.mailer.timeout:
                        break
                    pending.pop(0)
                    try:
                        await self._email(mail, delivery)
                    except MailError as error:
                        # The connection dropped during this send, which may or may not
                        # have arrived: retried later, with the same Message-ID.
                        await self._failed(delivery, str(error), permanent=False)
                        raise
                    except Exception as error:
                        log.exception("email %s could not be composed", delivery.id)
                        await self._failed(delivery, f"internal error: {error!r}", permanent=False)
        finally:
            # Not attempted (the server is unreachable, the claim ran short, or the
            # worker is stopping): handed back as they were.
            if pending:
                await self._release(pending)

    async def _release(self, deliveries: list[Delivery]) -> None:
        ids = [d.id for d in deliveries]
        async with self.db.session() as session:
            await outbox.release(session, ids, worker=self.name)
            await session.commit()
        deliveries.clear()

    async def _email(self, mail: MailSession, delivery: Delivery) -> None:
        draft = await compose_email(self.db, delivery, self.outreach)
        if isinstance(draft, Skip):
            async with self.db.session() as session:
                await outbox.mark_skipped(
                    session, delivery.id, worker=self.name, reason=draft.reason
                )
                await session.commit()
            log.info("email %s (%s) not sent: %s", delivery.id, delivery.topic, draft.reason)
            return
        mid = message_id(self.outreach.link_key, delivery.id, self._domain)
        message = render_email(draft, mail_from=self.settings.mail_from, message_id=mid)
        if delivery.resumed:
            log.warning(
                "email %s was claimed by a worker that stopped before it finished; sending "
                "it with the same Message-ID %s",
                delivery.id,
                mid,
            )
        if self.mailer.logs_links:
            # Before the file exists: whoever finds the email finds its links logged.
            for link in draft.links:
                log.info("email %s (%s) link: %s", delivery.id, delivery.topic, link)
        try:
            await mail.send(message)
        except MailError as error:
            if error.connection:
                raise
            await self._failed(delivery, str(error), permanent=error.permanent)
            return
        await self._sent(delivery)
        log.info(
            "email %s (%s) sent to %s, Message-ID %s",
            delivery.id,
            delivery.topic,
            draft.to_address,
            mid,
        )

    async def _sent(self, delivery: Delivery) -> None:
        async with self.db.session() as session:
            if not await outbox.mark_sent(session, delivery.id, worker=self.name):
                log.warning(
                    "delivery %s: sent, but its claim had passed to another worker", delivery.id
                )
            await session.commit()

    async def _failed(self, delivery: Delivery, error: str, *, permanent: bool) -> None:
        last = permanent or delivery.attempts >= self.settings.max_attempts
        retry = None if last else self.settings.backoff(delivery.attempts)
        async with self.db.session() as session:
            await outbox.mark_failed(
                session, delivery.id, worker=self.name, error=error, retry_in_seconds=retry
            )
            await session.commit()
        what = f"{delivery.channel.lower()} {delivery.id} ({delivery.topic})"
        if retry is None:
            log.error("%s is a dead letter after %d attempts: %s", what, delivery.attempts, error)
        else:
            log.warning(
                "%s failed (attempt %d): %s; retrying in %.1f s",
                what,
                delivery.attempts,
                error,
                retry,
            )

    async def _guarded_webhook(self, delivery: Delivery) -> None:
        try:
            await self._webhook(delivery)
        except Exception as error:
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
            await self._failed(delivery, f"internal error: {error!r}", permanent=False)

    async def _webhook(self, delivery: Delivery) -> None:
        assert delivery.webhook_id is not None
        async with self.db.session() as session:
            webhook = await webhook_queries.get_webhook(session, delivery.webhook_id)
        if webhook is None or not webhook.active:
            async with self.db.session() as session:
                await outbox.mark_skipped(
                    session, delivery.id, worker=self.name, reason="the endpoint is disabled"
                )
                await session.commit()
            return
        body = orjson.dumps(delivery.payload)
        msg_id = str(delivery.payload.get("id") or f"msg_{delivery.id}")
        try:
            await self.webhooks.deliver(webhook.url, webhook.secret, msg_id, body)
        except WebhookError as error:
            async with self.db.session() as session:
                active, disabled = await webhook_queries.record_failure(
                    session,
                    delivery.webhook_id,
                    error=str(error),
                    disable_after=self.settings.webhook_disable_after,
                )
                await session.commit()
            if disabled:
                log.error(
                    "webhook %s (%s) disabled after %d failures in a row: %s",
                    delivery.webhook_id, webhook.url, self.settings.webhook_disable_after, error,
                )  # fmt: skip
            # No more attempts at an endpoint that is disabled now.
            await self._failed(delivery, str(error), permanent=not active)
            return
        await self._sent(delivery)
        async with self.db.session() as session:
            await webhook_queries.record_success(session, delivery.webhook_id)
            await session.commit()
        log.info("webhook %s (%s) delivered to %s", delivery.id, delivery.topic, webhook.url)

    # -- digests -----------------------------------------------------------------------

    async def queue_digests(self, *, everyone: bool) -> int:
        """Queues the digests due now (every enabled one with `everyone`); how many had
        something new. A digest with nothing new is not sent, only rescheduled."""
        queued, after = 0, 0
        while True:
            async with self.db.session() as session:
                due = await email_settings.due_digests(
                    session, limit=50, everyone=everyone, after_user_id=after
                )
                for digest in due:
                    now = datetime.now(UTC)
                    payload = await build_digest(
                        self.db, session, digest, now=now, weights=self.ranking,
                        limit=self.outreach.digest_items,
                    )  # fmt: skip
                    if payload is not None:
                        await outbox.enqueue(
                            session,
                            channel="EMAIL",
                            topic="digest",
                            recipient_id=digest.user_id,
                            payload=payload,
                        )
                        queued += 1
                    await email_settings.finish_digest(
                        session,
                        digest.user_id,
                        window_end=now if payload is not None else None,
                        period=DIGEST_PERIODS[digest.frequency],
                    )
                await session.commit()
            if not due:
                return queued
            after = due[-1].user_id
