"""Running the delivery worker inside a test, against the test's database."""

from dataclasses import replace
from typing import Any

from db.session import Database
from gateway.mailer import SmtpMailer, parse_smtp_url
from gateway.webhook_client import WebhookClient
from gateway.worker import DeliverySettings, DeliveryWorker
from resolvers.outreach import Outreach
from resolvers.ranking import RankingWeights

PUBLIC_URL = "http://gateway.test"
OUTREACH = Outreach(public_url=PUBLIC_URL, link_key=b"test link key", allow_private_webhooks=True)
FAST = DeliverySettings(
    retry_seconds=0.05, poll_seconds=0.1, mail_from="Gateway <gateway@gateway.test>"
)


def make_worker(
    db: Database,
    smtp_url: str,
    *,
    outreach: Outreach = OUTREACH,
    allow_private: bool = True,
    **settings: Any,
) -> DeliveryWorker:
    return DeliveryWorker(
        db,
        outreach=outreach,
        mailer=SmtpMailer(parse_smtp_url(smtp_url)),
        webhooks=WebhookClient(allow_private=allow_private, timeout=5),
        settings=replace(FAST, **settings),
        ranking=RankingWeights(),
    )
