"""Turn a rendered email into RFC 5322 bytes with the headers inbox providers expect.

The bytes are written directly instead of through ``email.message.EmailMessage``:
building, then flattening, an ``EmailMessage`` cost more CPU per email than rendering
and the SMTP exchange together. The output is deliberately plain and 7-bit clean:

* ``multipart/alternative`` with a ``text/plain`` then a ``text/html`` part, both
  UTF-8 and quoted-printable (a C call, ``binascii.b2a_qp``; lines stay under 76
  characters, so no server needs 8BITMIME and nothing long gets rewrapped);
* CRLF line endings throughout;
* non-ASCII Subject and display names as RFC 2047 encoded words (``email.header``);
* Subject and display names on one line (``delivery.header_text.one_line``): a CR or LF
  there comes from a shopper's name or a template, and is a space, not a failure;
* every other header value (addresses, ids, URLs) refused with ``HeaderInjection`` if
  it holds CR or LF: those cannot be cleaned without becoming different values.

``tests/test_delivery_message.py`` parses the output back with the standard library.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, getaddresses, parseaddr

from nudge.delivery.header_text import one_line
from nudge.delivery.render import Rendered
from nudge.delivery.return_path import return_path, unsubscribe_mailto
from nudge.errors import PermanentError

# RFC 5322: lines SHOULD stay within 78 characters and MUST within 998.
_FOLD_AT = 78
_MAX_LINE = 998


class HeaderInjection(PermanentError):
    """An address, id or URL with CR or LF (it could smuggle in a Bcc:), or not one address."""

    reason = "header_injection"


class BadAddress(PermanentError):
    """An address we cannot put on the wire without SMTPUTF8, which we do not use."""

    reason = "bad_address"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What the transport needs: the envelope and the finished message bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


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


def _unstructured(name: str, value: str) -> str:
    """``Name: value`` with RFC 2047 encoding and folding only where needed.

    The common case (short ASCII) is written as is. ``=?`` in plain text would be
    read as the start of an encoded word, so such values are encoded too.
    """
    check_header(name, value)
    if value.isascii() and "=?" not in value and len(name) + 2 + len(value) <= _FOLD_AT:
        return f"{name}: {value}"
    if value.isascii() and "=?" not in value:
        # Plain ASCII folds at whitespace; a word too long to fit 998 characters even
        # so is encoded, since encoded words can be split anywhere.
        header = Header(value, "us-ascii", maxlinelen=_FOLD_AT, header_name=name)
        encoded = header.encode(linesep="\r\n")
        if all(len(line) <= _MAX_LINE - len(name) - 2 for line in encoded.split("\r\n")):
            return f"{name}: {encoded}"
    encoded = Header(value, "utf-8", maxlinelen=_FOLD_AT, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"


def _structured(name: str, value: str) -> str:
    """A header whose syntax forbids encoded words (URLs, ids): ASCII, one line."""
    check_header(name, value)
    line = f"{name}: {value}"
    if not line.isascii() or len(line) > _MAX_LINE:
        raise HeaderInjection(f"header_injection: {name} must be ASCII and under 998 characters")
    return line


def _mailbox(name: str, value: str, display_name: str | None = None) -> tuple[str, str]:
    """(header line, addr-spec) for exactly one mailbox, display name encoded if needed.

    ``display_name``, when given, replaces any display name in ``value``. Display names
    are cleaned to one line; the address is refused if it holds CR or LF (in a whole
    ``Name <addr>`` string there is no telling where an injected line would end).
    """
    check_header(name, value)
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise HeaderInjection(f"header_injection: {name} must be one address, got {value!r}")
    display, addr = parsed[0]
    display = one_line(display if display_name is None else display_name)
    if not addr.isascii():
        # Encoded words are not allowed in an addr-spec (the old EmailMessage path put
        # them there anyway, which no server delivers); without SMTPUTF8 it is unsendable.
        raise BadAddress(f"bad_address: {name} address is not ASCII: {addr!r}")
    if not display:
        return f"{name}: {addr}", addr
    if display.isascii() and "=?" not in display:
        phrase = display
        # A display name with specials (comma, dot, ...) must be a quoted string.
        if any(c in display for c in '()<>@,;:\\".[]'):
            escaped = display.replace("\\", "\\\\").replace('"', '\\"')
            phrase = f'"{escaped}"'
    else:
        phrase = Header(display, "utf-8", header_name=name).encode(linesep="\r\n")
    line = f"{name}: {phrase} <{addr}>"
    if len(line) > _MAX_LINE:
        raise HeaderInjection(f"header_injection: {name} is longer than 998 characters")
    return line, addr


# The From line is the same for every email: parse it once (failures are not cached).
_sender_mailbox = functools.lru_cache(maxsize=8)(_mailbox)


def _qp(text: str) -> bytes:
    """UTF-8, quoted-printable body with CRLF line endings and a final line break."""
    if not text.endswith("\n"):
        text += "\n"
    # b2a_qp picks its line ending from the first one it sees, so make them all CRLF.
    crlf = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return binascii.b2a_qp(crlf.encode("utf-8"), istext=True)


def _part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _qp(text)


def build_message(
    rendered: Rendered,
    *,
    command_id: str,
    mail_from: str,
    recipient: str,
    unsubscribe_url: str | None,
    now_ms: int,
    ref: str,
    bounce_domain: str,
    recipient_name: str | None = None,
) -> OutgoingMessage:
    """``recipient_name`` (e.g. the customer's first and last name) becomes the To
    display name, cleaned like the Subject.

    ``ref`` is the message's opaque name (``sent_messages.message_ref``): the envelope
    sender is ``bounce+<ref>@<bounce_domain>`` (VERP) and ``X-Nudge-Ref`` carries it, so
    a bounce or complaint names the message without exposing internal ids. The From
    header is ``mail_from`` as configured.
    """
    from_line, _ = _sender_mailbox("From", mail_from)
    sender = check_header("MAIL FROM", return_path(ref, bounce_domain))
    to_line, addr = _mailbox("To", recipient, recipient_name)
    mid = message_id(command_id, mail_from)
    # "=_" cannot occur in quoted-printable output ("=" is always followed by two hex
    # digits or a line break there), so this boundary never collides with a body.
    boundary = f"=_nudge_{mid[1:25]}"
    lines = [
        from_line,
        to_line,
        # The renderer already cleans what it renders; a Rendered built elsewhere is not.
        _unstructured("Subject", one_line(rendered.subject)),
        f"Date: {format_datetime(datetime.fromtimestamp(now_ms / 1000, tz=UTC))}",
        f"Message-ID: {mid}",
        _structured("X-Nudge-Ref", ref),
    ]
    if unsubscribe_url:
        # RFC 8058 one-click: mailbox providers POST to this URL from their own UI. It
        # must stay a literal <URL>: an encoded-word there is not an unsubscribe link.
        # The mailto: beside it serves clients that unsubscribe by email (``nudge inbound``).
        # Folded after the comma: each URI stays whole on its own line.
        https = _structured("List-Unsubscribe", f"<{unsubscribe_url}>")
        mailto = _structured("List-Unsubscribe", f"<{unsubscribe_mailto(ref, bounce_domain)}>")
        lines.append(f"{https},\r\n {mailto.partition(': ')[2]}")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    lines.append("MIME-Version: 1.0")
    lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    data = b"".join(
        (
            head,
            delimiter,
            _part("plain", rendered.text),
            b"\r\n",
            delimiter,
            _part("html", rendered.html),
            b"\r\n",
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
    return OutgoingMessage(sender=sender, recipients=(addr,), data=data, message_id=mid)
