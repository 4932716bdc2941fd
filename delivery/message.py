"""Turn a rendered email into a MIME message with the headers inbox providers expect."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from delivery.render import Rendered
from nudge.errors import PermanentError


class HeaderInjection(PermanentError):
    """A header value with CR or LF: it could smuggle headers (Bcc:) into the message."""

    reason = "header_injection"


def check_header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"header_injection: {name} contains CR or LF")
    return value


def _domain(mail_from: str) -> str:
    _, address = parseaddr(mail_from)
    return address.rpartition("@")[2] or "localhost"


def message_id(command_id: str, mail_from: str) -> str:
    """Stable per command, so a resent copy (were there ever one) threads as the same."""
    digest = hashlib.sha256(command_id.encode()).hexdigest()[:32]
    return f"<{digest}@{_domain(mail_from)}>"


def envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1]


def build_message(
    rendered: Rendered,
    *,
    command_id: str,
    mail_from: str,
    recipient: str,
    unsubscribe_url: str | None,
    now_ms: int,
) -> EmailMessage:
    check_header("From", mail_from)
    check_header("To", recipient)
    check_header("Subject", rendered.subject)
    check_header("X-Nudge-Command-Id", command_id)
    parsed = getaddresses([recipient])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise HeaderInjection(f"header_injection: To must be one address, got {recipient!r}")

    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = recipient
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    msg["Message-ID"] = message_id(command_id, mail_from)
    msg["X-Nudge-Command-Id"] = command_id
    if unsubscribe_url:
        check_header("List-Unsubscribe", unsubscribe_url)
        # RFC 8058 one-click: mailbox providers POST to this URL from their own UI.
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
