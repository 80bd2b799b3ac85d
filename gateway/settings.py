"""Settings, read once from the environment (and an optional .env) by the CLI."""

import hashlib
import secrets
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.limits import QueryLimits
from gateway.mailer import parse_smtp_url
from gateway.rate_limits import RateLimiter
from resolvers.outreach import Outreach
from resolvers.ranking import RankingWeights

if TYPE_CHECKING:
    from gateway.worker import DeliverySettings

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", frozen=True, extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    host: str = Field(default="127.0.0.1", validation_alias="GATEWAY_HOST")
    port: int = Field(default=8000, validation_alias="GATEWAY_PORT")
    data_dir: Path = Field(default=Path(".gateway"), validation_alias="GATEWAY_DATA_DIR")
    secret_key: str | None = Field(default=None, validation_alias="GATEWAY_SECRET_KEY")
    env: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="GATEWAY_ENV")
    seed_demo: bool = Field(default=True, validation_alias="GATEWAY_SEED_DEMO")
    max_page_size: int = Field(default=100, validation_alias="GATEWAY_MAX_PAGE_SIZE")
    db_pool_size: int = Field(default=10, validation_alias="GATEWAY_DB_POOL_SIZE")
    db_connect_timeout: float = Field(default=5.0, validation_alias="GATEWAY_DB_CONNECT_TIMEOUT")
    token_ttl_hours: float = Field(default=168.0, gt=0, validation_alias="GATEWAY_TOKEN_TTL_HOURS")
    ws_connection_init_timeout: float = Field(
        default=10.0, gt=0, validation_alias="GATEWAY_WS_CONNECTION_INIT_TIMEOUT"
    )
    # Seconds Postgres lets one statement run before cancelling it; 0 turns it off.
    db_statement_timeout: float = Field(
        default=10.0, ge=0, validation_alias="GATEWAY_DB_STATEMENT_TIMEOUT"
    )

    # Safety (docs/security.md): operations over a limit are refused before they execute.
    max_depth: int = Field(default=20, gt=0, validation_alias="GATEWAY_MAX_DEPTH")
    max_aliases: int = Field(default=30, ge=0, validation_alias="GATEWAY_MAX_ALIASES")
    max_root_fields: int = Field(default=20, gt=0, validation_alias="GATEWAY_MAX_ROOT_FIELDS")
    max_cost: int = Field(default=10_000, gt=0, validation_alias="GATEWAY_MAX_COST")
    max_tokens: int = Field(default=2_000, gt=0, validation_alias="GATEWAY_MAX_TOKENS")
    max_query_length: int = Field(default=50_000, gt=0, validation_alias="GATEWAY_MAX_QUERY_LENGTH")
    max_body_bytes: int = Field(default=1_048_576, gt=0, validation_alias="GATEWAY_MAX_BODY_BYTES")
    document_cache_size: int = Field(
        default=500, gt=0, validation_alias="GATEWAY_DOCUMENT_CACHE_SIZE"
    )
    persisted_queries_size: int = Field(
        default=1_000, gt=0, validation_alias="GATEWAY_PERSISTED_QUERIES_SIZE"
    )
    trusted_documents: Path | None = Field(
        default=None, validation_alias="GATEWAY_TRUSTED_DOCUMENTS"
    )
    rate_limit_capacity: float = Field(
        default=100_000, gt=0, validation_alias="GATEWAY_RATE_LIMIT_CAPACITY"
    )
    rate_limit_refill: float = Field(
        default=5_000, gt=0, validation_alias="GATEWAY_RATE_LIMIT_REFILL"
    )
    # The compiled read path (schema/compiled_reads.py); off, every operation runs
    # through the resolvers.
    compiled_reads: bool = Field(default=True, validation_alias="GATEWAY_COMPILED_READS")

    # Email and webhooks (docs/email.md).
    public_url: str | None = Field(default=None, validation_alias="GATEWAY_PUBLIC_URL")
    smtp_url: str | None = Field(default=None, validation_alias="GATEWAY_SMTP_URL")
    mail_from: str = Field(
        default="Content gateway <gateway@localhost>", validation_alias="GATEWAY_MAIL_FROM"
    )
    content_url: str | None = Field(default=None, validation_alias="GATEWAY_CONTENT_URL")
    require_verified_email: bool = Field(
        default=False, validation_alias="GATEWAY_REQUIRE_VERIFIED_EMAIL"
    )
    webhook_allow_private_addresses: bool = Field(
        default=False, validation_alias="GATEWAY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"
    )
    webhook_disable_after: int = Field(
        default=15, gt=0, validation_alias="GATEWAY_WEBHOOK_DISABLE_AFTER"
    )
    account_emails_per_hour: int = Field(
        default=5, gt=0, validation_alias="GATEWAY_ACCOUNT_EMAILS_PER_HOUR"
    )
    account_requests_per_hour: int = Field(
        default=30, gt=0, validation_alias="GATEWAY_ACCOUNT_REQUESTS_PER_HOUR"
    )
    digest_items: int = Field(default=10, gt=0, le=50, validation_alias="GATEWAY_DIGEST_ITEMS")
    worker: bool = Field(default=True, validation_alias="GATEWAY_WORKER")
    delivery_max_attempts: int = Field(
        default=8, gt=0, validation_alias="GATEWAY_DELIVERY_MAX_ATTEMPTS"
    )
    delivery_retry_seconds: float = Field(
        default=30.0, gt=0, validation_alias="GATEWAY_DELIVERY_RETRY_SECONDS"
    )
    delivery_lease_seconds: float = Field(
        default=300.0, gt=0, validation_alias="GATEWAY_DELIVERY_LEASE_SECONDS"
    )
    delivery_batch_size: int = Field(
        default=20, gt=0, le=1000, validation_alias="GATEWAY_DELIVERY_BATCH_SIZE"
    )
    worker_poll_seconds: float = Field(
        default=5.0, gt=0, validation_alias="GATEWAY_WORKER_POLL_SECONDS"
    )

    # Ranking (docs/ranking.md): weights of each factor, half-lives and candidate limits.
    rank_followed_author: float = Field(
        default=1.0, validation_alias="GATEWAY_RANK_FOLLOWED_AUTHOR"
    )
    rank_tag: float = Field(default=1.0, validation_alias="GATEWAY_RANK_TAG")
    rank_habit: float = Field(default=0.6, validation_alias="GATEWAY_RANK_HABIT")
    rank_popularity: float = Field(default=0.5, validation_alias="GATEWAY_RANK_POPULARITY")
    rank_freshness: float = Field(default=1.0, validation_alias="GATEWAY_RANK_FRESHNESS")
    rank_fresh_half_life_hours: float = Field(
        default=24.0, gt=0, validation_alias="GATEWAY_RANK_FRESH_HALF_LIFE_HOURS"
    )
    rank_habit_half_life_days: float = Field(
        default=30.0, gt=0, validation_alias="GATEWAY_RANK_HABIT_HALF_LIFE_DAYS"
    )
    rank_window_days: int = Field(default=30, gt=0, validation_alias="GATEWAY_RANK_WINDOW_DAYS")
    rank_walk_size: int = Field(
        default=500, gt=0, le=5000, validation_alias="GATEWAY_RANK_WALK_SIZE"
    )

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @model_validator(mode="after")
    def _production_needs_real_secret(self) -> Self:
        if self.production and (self.secret_key or "").strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "GATEWAY_SECRET_KEY must be set to a real secret when GATEWAY_ENV=production"
            )
        if self.production and len(self.secret_key or "") < 32:
            raise ValueError("GATEWAY_SECRET_KEY must be at least 32 characters in production")
        if self.smtp_url:
            parse_smtp_url(self.smtp_url)
        if "@" not in self.mail_from:
            raise ValueError("GATEWAY_MAIL_FROM must hold an address: Name <name@example.com>")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("GATEWAY_PUBLIC_URL must start with http:// or https://")
        return self

    def public_base(self) -> str:
        """What links in emails start with: GATEWAY_PUBLIC_URL, else this server."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def outreach(self, secret: str) -> Outreach:
        hour = 3600.0
        return Outreach(
            public_url=self.public_base(),
            link_key=hashlib.sha256(b"links:" + secret.encode()).digest(),
            require_verified_email=self.require_verified_email,
            allow_private_webhooks=self.webhook_allow_private_addresses,
            content_url=self.content_url,
            digest_items=self.digest_items,
            per_address=RateLimiter(
                capacity=self.account_emails_per_hour,
                refill_per_second=self.account_emails_per_hour / hour,
            ),
            per_client=RateLimiter(
                capacity=self.account_requests_per_hour,
                refill_per_second=self.account_requests_per_hour / hour,
            ),
        )

    def delivery(self) -> "DeliverySettings":
        from gateway.worker import DeliverySettings

        return DeliverySettings(
            max_attempts=self.delivery_max_attempts,
            retry_seconds=self.delivery_retry_seconds,
            lease_seconds=self.delivery_lease_seconds,
            poll_seconds=self.worker_poll_seconds,
            batch_size=self.delivery_batch_size,
            webhook_disable_after=self.webhook_disable_after,
            mail_from=self.mail_from,
        )

    def limits(self) -> QueryLimits:
        return QueryLimits(
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
            max_root_fields=self.max_root_fields,
            max_cost=self.max_cost,
            max_tokens=self.max_tokens,
            max_query_length=self.max_query_length,
            max_page_size=self.max_page_size,
        )

    def ranking(self) -> RankingWeights:
        return RankingWeights(
            followed_author=self.rank_followed_author,
            tag=self.rank_tag,
            habit=self.rank_habit,
            popularity=self.rank_popularity,
            freshness=self.rank_freshness,
            fresh_half_life_hours=self.rank_fresh_half_life_hours,
            habit_half_life_days=self.rank_habit_half_life_days,
            window_days=self.rank_window_days,
            walk_size=self.rank_walk_size,
        )

    def with_database(self, url: str) -> "Settings":
        return self.model_copy(update={"database_url": url})

    def with_secret(self, secret: str) -> "Settings":
        return self.model_copy(update={"secret_key": secret})


def load_or_create_secret(data_dir: Path) -> str:
    """The development secret: generated on first start and kept in the data folder,
    so tokens and cursors survive restarts without anyone choosing a secret."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret
