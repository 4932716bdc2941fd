"""Email and phone normalisation for customer imports.

The local part is kept as written (some mail systems treat it case-sensitively); the
domain is lowercased and IDNA-encoded, since DNS is case-insensitive and ASCII-only.
The pattern is the WHATWG "valid email address" (what browsers accept), with RFC 5321
length limits: strict enough to catch typos, loose enough for real addresses.
"""

from __future__ import annotations

import re

from nudge.imports.errors import RowError

_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+\Z")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_PHONE_JUNK = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+?\d{5,15}\Z")


def normalise_email(raw: str) -> str:
    value = raw.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise RowError(f"invalid email {raw!r:.80}")
    try:
        domain = domain.lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise RowError(f"invalid email {raw!r:.80}") from None
    labels = domain.split(".")
    if (
        len(local) > 64
        or len(value) > 254
        or not _LOCAL.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise RowError(f"invalid email {raw!r:.80}")
    return f"{local}@{domain}"


def normalise_phone(raw: str) -> str:
    value = _PHONE_JUNK.sub("", raw.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _PHONE.match(value):
        raise RowError(f"invalid phone {raw!r:.40}")
    return value
