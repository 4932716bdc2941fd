"""The addresses a sent message gives the world to answer at: VERP return path and
``mailto:`` unsubscribe, both naming the message by its opaque ref.

``bounce+<ref>@<bounce domain>`` is the SMTP envelope sender (MAIL FROM): every
bounce comes back to an address that says which message bounced, whatever the
remote server writes in its report (VERP). ``unsubscribe+<ref>@<bounce domain>`` is
the ``mailto:`` of ``List-Unsubscribe``, for mail clients that unsubscribe by email.
``nudge inbound`` receives both (the bounce domain's MX points at it) and reads the
ref back with ``parse_verp``. One home for the format, so the two sides cannot drift.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Literal

from nudge.settings import Settings

VerpKind = Literal["bounce", "unsubscribe"]
_PREFIXES: dict[str, VerpKind] = {"bounce+": "bounce", "unsubscribe+": "unsubscribe"}


def bounce_domain(settings: Settings) -> str:
    """``NUDGE_BOUNCE_DOMAIN``, else the domain of ``NUDGE_MAIL_FROM``."""
    if settings.bounce_domain:
        return settings.bounce_domain
    return parseaddr(settings.mail_from)[1].rpartition("@")[2].lower() or "localhost"


def return_path(ref: str, domain: str) -> str:
    return f"bounce+{ref}@{domain}"


def unsubscribe_address(ref: str, domain: str) -> str:
    return f"unsubscribe+{ref}@{domain}"


def unsubscribe_mailto(ref: str, domain: str) -> str:
    """The ``mailto:`` URI of ``List-Unsubscribe`` (RFC 2369)."""
    return f"mailto:{unsubscribe_address(ref, domain)}?subject=unsubscribe"


def parse_verp(address: str) -> tuple[VerpKind, str] | None:
    """``("bounce" | "unsubscribe", ref)`` for one of our addresses, else None.

    The domain is not checked: the server receiving it answers for the bounce domain
    only, and a ref is worth nothing unless it is on record. Local parts are matched
    without regard to case, as some servers upper-case them.
    """
    addr = parseaddr(address)[1] or address
    local, at, _ = addr.rpartition("@")
    if not at:
        return None
    lowered = local.lower()
    for prefix, kind in _PREFIXES.items():
        if lowered.startswith(prefix):
            ref = lowered[len(prefix) :]
            return (kind, ref) if ref.isalnum() else None
    return None
