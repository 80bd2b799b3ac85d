"""Settings, read once from the environment (and an optional .env) by the CLI."""

import hashlib
import ipaddress
import secrets
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.ranking import RankingWeights
from gateway.limits import QueryLimits
from gateway.live_budget import LiveLimits
from gateway.mailer import parse_smtp_url
from gateway.rate_limits import RateLimiter
from resolvers.outreach import Outreach
from resolvers.render import RemoteImages
from resolvers.safeguards import Safeguards
from resolvers.throttle import Allowance, AuthThrottle

if TYPE_CHECKING:
    from gateway.worker import DeliverySettings

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class RankingSettings(BaseSettings):
    """The ranking formula's knobs and the stored feed's sizes (docs/ranking.md), each
    read from GATEWAY_RANK_<NAME>; `weights()` is what the statements use."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_RANK_", env_file=".env", frozen=True, extra="ignore"
    )

    followed_author: float = 1.0
    tag: float = 1.0
    habit: float = 0.6
    popularity: float = 0.5
    freshness: float = 1.0
    fresh_half_life_hours: float = Field(default=24.0, gt=0)
    habit_half_life_days: float = Field(default=30.0, gt=0)
    window_days: int = Field(default=30, gt=0)
    walk_size: int = Field(default=500, gt=0, le=5000)
    feed_cap: int = Field(default=300, gt=0, le=5000)
    shared_candidates: int = Field(default=200, ge=0, le=5000)
    live_margin: int = Field(default=40, ge=0, le=1000)
    head_minutes: float = Field(default=10.0, ge=0, le=1440)
    inactive_days: int = Field(default=14, gt=0)
    refresh_hours: float = Field(default=6.0, gt=0)

    def weights(self) -> RankingWeights:
        return RankingWeights(**self.model_dump())


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", frozen=True, extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # Streaming replicas of the primary for reads, comma-separated URLs like DATABASE_URL.
    database_replica_urls: str = Field(default="", validation_alias="DATABASE_REPLICA_URLS")
    # A replica further behind than this (seconds), or unreachable, is skipped.
    replica_max_lag: float = Field(default=5.0, gt=0, validation_alias="GATEWAY_REPLICA_MAX_LAG")
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
    # Share each budget between every gateway process through Postgres (per process: false).
    rate_limit_shared: bool = Field(default=True, validation_alias="GATEWAY_RATE_LIMIT_SHARED")

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

    # Operating it (docs/deployment.md).
    # json: one JSON object a line; text: short lines. Unset: json in production.
    log_format: LogFormat | None = Field(default=None, validation_alias="GATEWAY_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="GATEWAY_LOG_LEVEL"
    )
    # Requests that take longer log the SQL statements they sent, with their times; 0: never.
    slow_request_ms: float = Field(default=1000, ge=0, validation_alias="GATEWAY_SLOW_REQUEST_MS")
    metrics: bool = Field(default=True, validation_alias="GATEWAY_METRICS")
    # /metrics needs `Authorization: Bearer <token>` when set.
    metrics_token: str | None = Field(default=None, validation_alias="GATEWAY_METRICS_TOKEN")
    # host:port of a listener of its own for /metrics (started by `gateway serve`); the
    # public port then has no /metrics.
    metrics_address: str | None = Field(default=None, validation_alias="GATEWAY_METRICS_ADDRESS")
    metrics_operation_names: int = Field(
        default=200, ge=0, validation_alias="GATEWAY_METRICS_OPERATION_NAMES"
    )
    # Seconds /readyz answers 503 after SIGTERM before the process stops taking requests,
    # for load balancers to notice. Unset: 5 in production, 0 in development.
    drain_seconds: float | None = Field(
        default=None, ge=0, validation_alias="GATEWAY_DRAIN_SECONDS"
    )
    # OpenTelemetry's own variable: traces are exported there when it is set.
    otel_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field(default="content-gateway", validation_alias="OTEL_SERVICE_NAME")

    # Queries answered whole with one statement before strawberry starts
    # (execution/executor.py); off, strawberry resolves each root field, and each
    # compiles its own selection (one statement per root field).
    whole_queries: bool = Field(default=True, validation_alias="GATEWAY_WHOLE_QUERIES")

    # Abuse controls (docs/security.md): what one client may cost everyone else.
    ranking_cost: int = Field(default=500, ge=0, validation_alias="GATEWAY_RANKING_COST")
    request_time_budget: float = Field(
        default=2.0, ge=0, validation_alias="GATEWAY_REQUEST_TIME_BUDGET"
    )
    signin_failures_per_login: int = Field(
        default=10, gt=0, validation_alias="GATEWAY_SIGNIN_FAILURES_PER_LOGIN"
    )
    signin_failures_per_address: int = Field(
        default=50, gt=0, validation_alias="GATEWAY_SIGNIN_FAILURES_PER_ADDRESS"
    )
    signin_window: float = Field(default=900.0, gt=0, validation_alias="GATEWAY_SIGNIN_WINDOW")
    signups_per_address: int = Field(
        default=20, gt=0, validation_alias="GATEWAY_SIGNUPS_PER_ADDRESS"
    )
    signup_window: float = Field(default=3600.0, gt=0, validation_alias="GATEWAY_SIGNUP_WINDOW")
    notification_collapse_hours: float = Field(
        default=24.0, ge=0, validation_alias="GATEWAY_NOTIFICATION_COLLAPSE_HOURS"
    )
    header_timeout: float = Field(default=10.0, gt=0, validation_alias="GATEWAY_HEADER_TIMEOUT")
    body_timeout: float = Field(default=20.0, gt=0, validation_alias="GATEWAY_BODY_TIMEOUT")
    max_connections_per_address: int = Field(
        default=100, gt=0, validation_alias="GATEWAY_MAX_CONNECTIONS_PER_ADDRESS"
    )
    # Comma-separated addresses or networks whose X-Forwarded-For is believed; none by
    # default, so no client can pose as another by sending the header itself.
    trusted_proxies: str = Field(default="", validation_alias="GATEWAY_TRUSTED_PROXIES")
    remote_images: RemoteImages = Field(
        default=RemoteImages.DROP, validation_alias="GATEWAY_REMOTE_IMAGES"
    )
    # Live subscriptions (gateway/live_budget.py): operations one WebSocket may run at
    # once, and the cost running subscriptions may hold per connection, per client
    # (viewer, else address) and per process.
    ws_max_operations: int = Field(default=20, gt=0, validation_alias="GATEWAY_WS_MAX_OPERATIONS")
    subscription_cost_per_connection: int = Field(
        default=10_000, gt=0, validation_alias="GATEWAY_SUBSCRIPTION_COST_PER_CONNECTION"
    )
    subscription_cost_per_client: int = Field(
        default=50_000, gt=0, validation_alias="GATEWAY_SUBSCRIPTION_COST_PER_CLIENT"
    )
    subscription_cost_per_process: int = Field(
        default=1_000_000, gt=0, validation_alias="GATEWAY_SUBSCRIPTION_COST_PER_PROCESS"
    )
    # The event log (db/event_log.py, docs/live-updates.md): how long and how many events
    # it keeps (a resume cursor older than that is CURSOR_EXPIRED), how often it is
    # pruned, and how often a process looks at it when no wake-up came.
    event_log_retention_hours: float = Field(
        default=24.0, gt=0, validation_alias="GATEWAY_EVENT_LOG_RETENTION_HOURS"
    )
    event_log_max_events: int = Field(
        default=1_000_000, gt=0, validation_alias="GATEWAY_EVENT_LOG_MAX_EVENTS"
    )
    event_log_prune_seconds: float = Field(
        default=10.0, gt=0, validation_alias="GATEWAY_EVENT_LOG_PRUNE_SECONDS"
    )
    event_log_poll_seconds: float = Field(
        default=1.0, gt=0, validation_alias="GATEWAY_EVENT_LOG_POLL_SECONDS"
    )
    # Off: writes append no events, so no live updates (what events cost writers).
    events: bool = Field(default=True, validation_alias="GATEWAY_EVENTS")
    # Database connections live event work may hold at once; the rest of it waits.
    live_db_connections: int = Field(
        default=2, gt=0, validation_alias="GATEWAY_LIVE_DB_CONNECTIONS"
    )

    # Ranking (docs/ranking.md): GATEWAY_RANK_* each.
    ranking: RankingSettings = Field(default_factory=RankingSettings)

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def replica_urls(self) -> list[str]:
        return [url.strip() for url in self.database_replica_urls.split(",") if url.strip()]

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.JSON if self.production else LogFormat.TEXT

    @property
    def effective_drain_seconds(self) -> float:
        if self.drain_seconds is not None:
            return self.drain_seconds
        return 5.0 if self.production else 0.0

    @property
    def metrics_on_public_port(self) -> bool:
        """/metrics on the serving port: not when it has its own listener, and in
        production only behind a token."""
        if not self.metrics or self.metrics_address:
            return False
        return bool(self.metrics_token) or not self.production

    def metrics_listener(self) -> tuple[str, int] | None:
        if not self.metrics or not self.metrics_address:
            return None
        host, _, port = self.metrics_address.rpartition(":")
        return host or "127.0.0.1", int(port)

    @model_validator(mode="after")
    def _metrics_address_is_host_port(self) -> Self:
        if self.metrics_address:
            _, colon, port = self.metrics_address.rpartition(":")
            if not colon or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"GATEWAY_METRICS_ADDRESS must be host:port (e.g. 127.0.0.1:9100), not "
                    f"{self.metrics_address!r}"
                )
        return self

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Self:
        for entry in self.trusted_proxy_list():
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return self

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
            ranking_cost=self.ranking_cost,
        )

    def live_limits(self) -> LiveLimits:
        return LiveLimits(
            operations_per_connection=self.ws_max_operations,
            cost_per_connection=self.subscription_cost_per_connection,
            cost_per_client=self.subscription_cost_per_client,
            cost_per_process=self.subscription_cost_per_process,
            connections=self.live_db_connections,
        )

    def safeguards(self) -> Safeguards:
        return Safeguards(
            notification_collapse=timedelta(hours=self.notification_collapse_hours),
            images=self.remote_images,
            throttle=AuthThrottle(
                sign_in_per_login=Allowance(self.signin_failures_per_login, self.signin_window),
                sign_in_per_address=Allowance(self.signin_failures_per_address, self.signin_window),
                sign_up_per_address=Allowance(self.signups_per_address, self.signup_window),
            ),
        )

    def trusted_proxy_list(self) -> list[str]:
        """GATEWAY_TRUSTED_PROXIES as a list of addresses and networks (or "*")."""
        return [entry.strip() for entry in self.trusted_proxies.split(",") if entry.strip()]

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
