"""An email from a composed draft (resolvers/outbound.py): plain text and HTML from the
templates, a Message-ID that stays the same on every attempt to send it, and for
everything but account mail a one-click unsubscribe (RFC 8058)."""

import hashlib
import hmac
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses

from gateway.jinja import templates
from resolvers.outbound import EmailDraft


def sender_domain(mail_from: str) -> str:
    """The domain of GATEWAY_MAIL_FROM, which Message-IDs are made under."""
    addresses = getaddresses([mail_from])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "localhost"


def message_id(key: bytes, delivery_id: int, domain: str) -> str:
    """Unique per outbox row and deployment; the same for every attempt, so a receiver
    (or a person) can tell a repeat from a new message."""
    mac = hmac.new(key, f"message-id:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"<{delivery_id:010d}.{mac}@{domain}>"


def render_email(draft: EmailDraft, *, mail_from: str, message_id: str) -> EmailMessage:
    values = {**draft.values, "subject": draft.subject, "unsubscribe_url": draft.unsubscribe_url}
    text = templates.get_template(f"email/{draft.template}.txt").render(values)
    html = templates.get_template(f"email/{draft.template}.html").render(values)
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((draft.to_name, str(Address(addr_spec=draft.to_address))))
    message["Subject"] = draft.subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(datetime.now(UTC))
    # Tells vacation responders and mail filters that no person typed this.
    message["Auto-Submitted"] = "auto-generated"
    if draft.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{draft.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
