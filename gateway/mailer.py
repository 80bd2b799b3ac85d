"""Where email goes: an SMTP server (aiosmtplib), or, with none configured, .eml files
in the data folder that a developer opens in any mail program.

GATEWAY_SMTP_URL: smtp://user:password@host:port uses STARTTLS when the server offers
it (`?starttls=require` refuses a server that does not, `?starttls=off` never asks);
smtps://... is TLS from the first byte (port 465). `?timeout=S` bounds each command."""

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

log = logging.getLogger("gateway.mail")


class MailError(Exception):
    """A message was not accepted. `permanent`: retrying cannot help (the server refused
    the recipient for good). `connection`: the server could not be reached or dropped
    the connection, so nothing is wrong with the message itself."""

    def __init__(self, message: str, *, permanent: bool = False, connection: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.connection = connection


class MailSession(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class Mailer(Protocol):
    # How long one send may take: the worker stops starting sends this long before its
    # claim on a message runs out.
    timeout: float
    # Whether the links of a message may be logged (development, files).
    logs_links: bool

    def session(self) -> contextlib.AbstractAsyncContextManager[MailSession]: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    # None: STARTTLS when offered; True: required; False: never.
    starttls: bool | None
    timeout: float


def parse_smtp_url(url: str) -> SmtpConfig:
    """ValueError with what to fix when the URL cannot be used."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("GATEWAY_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("GATEWAY_SMTP_URL needs a host: smtp://user:password@host:587")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls_option = options.get("starttls", "auto").lower()
    starttls = {"auto": None, "require": True, "required": True, "off": False, "false": False}
    if starttls_option not in starttls:
        raise ValueError("GATEWAY_SMTP_URL: starttls must be auto, require or off")
    implicit = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=False if implicit else starttls[starttls_option],
        timeout=float(options.get("timeout", 30)),
    )


_UNREACHABLE = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
)


class _SmtpSession:
    def __init__(self, smtp: aiosmtplib.SMTP) -> None:
        self.smtp = smtp

    async def send(self, message: EmailMessage) -> None:
        try:
            await self.smtp.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise MailError(
                f"recipient refused: {error.recipients[0].message}",
                permanent=all(500 <= c < 600 for c in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise MailError(
                f"SMTP {error.code}: {error.message}", permanent=500 <= error.code < 600
            ) from None
        except _UNREACHABLE as error:
            raise MailError(f"SMTP connection lost: {error}", connection=True) from None
        except aiosmtplib.SMTPException as error:
            raise MailError(f"SMTP: {error}") from None


async def connect(config: SmtpConfig) -> aiosmtplib.SMTP:
    """A connection past STARTTLS and the login when the URL asks for them, as every send
    opens one (and `gateway doctor` checks one). MailError, with connection=True and what
    went wrong in plain words, when the server cannot be used: nothing is wrong with
    any message then."""
    c = config
    smtp = aiosmtplib.SMTP(
        hostname=c.host,
        port=c.port,
        username=c.username,
        password=c.password,
        use_tls=c.implicit_tls,
        start_tls=c.starttls,
        timeout=c.timeout,
    )
    server = f"the SMTP server {c.host}:{c.port}"
    try:
        await smtp.connect()
    except aiosmtplib.SMTPAuthenticationError as error:
        raise MailError(
            f"{server} refused the login of {c.username!r} ({error.code} {error.message}): "
            "check the user and password in GATEWAY_SMTP_URL",
            connection=True,
        ) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as error:
        raise MailError(f"cannot reach {server}: {error}", connection=True) from None
    except aiosmtplib.SMTPException as error:
        raise MailError(f"{server} cannot be used: {error}", connection=True) from None
    return smtp


class SmtpMailer:
    logs_links = False

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.timeout = config.timeout

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """One connection for a batch of messages."""
        smtp = await connect(self.config)
        try:
            yield _SmtpSession(smtp)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()


class FileMailer:
    """Each message as `<Message-ID local part>.eml` in `directory`: the name is the same
    on every attempt, so a retried message replaces its file instead of adding one."""

    timeout = 5.0

    def __init__(self, directory: Path, *, logs_links: bool) -> None:
        self.directory = directory
        self.logs_links = logs_links

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        yield self

    async def send(self, message: EmailMessage) -> None:
        name = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{name}.eml"
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(bytes(message))
            os.replace(temporary, path)
        except OSError as error:
            raise MailError(f"cannot write to {self.directory}: {error}") from None
        log.info("mail to %s written to %s: %s", message["To"], path, message["Subject"])


def mailer_for(
    smtp_url: str | None, data_dir: Path, *, production: bool
) -> SmtpMailer | FileMailer:
    if smtp_url:
        return SmtpMailer(parse_smtp_url(smtp_url))
    return FileMailer(data_dir / "mail", logs_links=not production)
