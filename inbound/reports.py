"""What a mail arriving at ``nudge inbound`` says: pure parsing, no I/O.

Three kinds of mail come in, told apart by where they were sent and what they hold:

* to ``unsubscribe+<ref>@``: a person unsubscribing through ``List-Unsubscribe``'s
  ``mailto:``; the body does not matter.
* an ARF feedback report (RFC 5965: ``multipart/report; report-type=feedback-report``
  with a ``message/feedback-report`` part): a spam complaint relayed by a mailbox
  provider's feedback loop, to whatever address the operator registered there, or to
  the return path.
* a delivery status notification (RFC 3464), or a non-standard bounce that
  ``flufl.bounce``'s heuristics recognise: to ``bounce+<ref>@`` (the VERP return path).

The message is named by the ref in the address it was sent to; failing that, by the
returned original's ``X-Nudge-Ref`` header, an ARF report's ``Original-Mail-From`` or
the original's ``Return-Path`` (both the VERP address). Mail that is none of these,
or names no message, raises ``InvalidMessage``: it goes to the dead-letter topic.
"""

from __future__ import annotations

import email
import logging
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

from flufl.bounce import all_failures

from nudge.delivery.return_path import parse_verp
from nudge.errors import InvalidMessage

# flufl.bounce logs every detector it runs at INFO, and logs the traceback of one that
# chokes on odd input before re-raising it; such mail is dead-lettered with its reason
# here, so those lines would only say it twice.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

#: The server's words kept from a report.
DETAIL_CHARS = 500
#: Feedback types that are a complaint (RFC 5965 section 7.3); others change nothing.
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})


@dataclass(frozen=True, slots=True)
class Bounce:
    """A DSN: ``hard`` for a permanent failure (5.x.x), else soft (4.x.x, delayed)."""

    ref: str
    hard: bool
    address: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class Complaint:
    ref: str
    feedback_type: str
    user_agent: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    ref: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """Well-formed mail that asks for nothing: an auto-reply, a "not spam" report."""

    reason: str


Report = Bounce | Complaint | Unsubscribe | Ignored


def read_report(recipient: str, raw: bytes) -> Report:
    """What ``raw``, received for ``recipient``, reports; ``InvalidMessage`` if nothing."""
    verp = parse_verp(recipient)
    if verp is not None and verp[0] == "unsubscribe":
        return Unsubscribe(verp[1])
    msg = email.message_from_bytes(raw)
    addressed = verp[1] if verp is not None else None
    feedback = _part(msg, "message/feedback-report")
    if feedback is not None:
        return _complaint(msg, feedback, addressed)
    bounce = _bounce(msg, addressed)
    if bounce is not None:
        return bounce
    if _auto_reply(msg):
        return Ignored("auto_reply")
    reason = "unparseable_dsn" if addressed is not None else "unrecognised_mail"
    raise InvalidMessage(reason, f"no delivery status or feedback report (to {recipient})")


# -- bounces -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Status:
    action: str
    status: str
    diagnostic: str


def _bounce(msg: Message, addressed: str | None) -> Bounce | None:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a heuristic detector tripping over odd input: not a bounce
        return None
    if not temporary and not permanent:
        return None
    statuses = _statuses(msg)
    failures = [(a.decode("ascii"), True) for a in sorted(permanent)]
    failures += [(a.decode("ascii"), False) for a in sorted(temporary)]
    # "Action: failed" after a 4.x.x (a queue lifetime ran out on a full mailbox) is
    # still a temporary condition of the address: soft.
    judged = [
        (address, failed and not statuses.get(address.lower(), _NO_STATUS).status.startswith("4"))
        for address, failed in failures
    ]
    address, hard = next(((a, h) for a, h in judged if h), judged[0])
    status = statuses.get(address.lower(), _NO_STATUS)
    ref = addressed or _original_ref(msg)
    if ref is None:
        raise InvalidMessage("unattributable_report", f"a bounce for {address} names no message")
    detail = _one_line(status.diagnostic or status.status or ("failed" if hard else "delayed"))
    return Bounce(ref, hard, address, status.status, detail)


_NO_STATUS = _Status("", "", "")


def _statuses(msg: Message) -> dict[str, _Status]:
    """Per failed recipient (lower case): the DSN's Action, Status and Diagnostic-Code."""
    found: dict[str, _Status] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else ():
            if not isinstance(block, Message):
                continue
            recipient = str(block.get("final-recipient") or block.get("original-recipient") or "")
            address = parseaddr(recipient.partition(";")[2].strip())[1]
            if address:
                found[address.lower()] = _Status(
                    str(block.get("action", "")).strip().lower(),
                    str(block.get("status", "")).strip(),
                    str(block.get("diagnostic-code", "")).partition(";")[2],
                )
    return found


def _auto_reply(msg: Message) -> bool:
    """RFC 3834: an out-of-office or similar answer to the return path."""
    submitted = str(msg.get("auto-submitted", "no")).strip().lower()
    return submitted != "no" or msg.get("x-autoreply") is not None


# -- complaints ----------------------------------------------------------------------
def _complaint(msg: Message, feedback: Message, addressed: str | None) -> Report:
    fields = _embedded_headers(feedback)
    if fields is None:
        raise InvalidMessage("unparseable_report", "the feedback-report part holds no fields")
    kind = str(fields.get("feedback-type", "")).strip().lower()
    if kind not in COMPLAINT_TYPES:
        return Ignored(f"feedback_{kind or 'untyped'}")
    ref = addressed or _original_ref(msg) or _verp_ref(fields.get("original-mail-from"))
    if ref is None:
        raise InvalidMessage("unattributable_report", "a complaint that names no message")
    agent = fields.get("user-agent")
    detail = f"feedback-type {kind}"
    return Complaint(ref, kind, _one_line(str(agent)) if agent else None, detail)


# -- the returned original -------------------------------------------------------------
def _original_ref(msg: Message) -> str | None:
    """The ref in the returned original's headers: ``X-Nudge-Ref``, else Return-Path."""
    original = _original(msg)
    if original is None:
        return None
    ref = str(original.get("x-nudge-ref", "")).strip().lower()
    if ref and ref.isalnum():
        return ref
    return _verp_ref(original.get("return-path"))


def _verp_ref(address: object) -> str | None:
    if not address:
        return None
    verp = parse_verp(str(address))
    return verp[1] if verp is not None and verp[0] == "bounce" else None


def _original(msg: Message) -> Message | None:
    """The returned message (``message/rfc822``) or its headers (``text/rfc822-headers``)."""
    for content_type in ("message/rfc822", "text/rfc822-headers"):
        part = _part(msg, content_type)
        if part is not None:
            return _embedded_headers(part)
    return None


def _embedded_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    if isinstance(payload, str):
        return email.message_from_string(payload.lstrip())
    return None


def _part(msg: Message, content_type: str) -> Message | None:
    return next((part for part in msg.walk() if part.get_content_type() == content_type), None)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:DETAIL_CHARS]
