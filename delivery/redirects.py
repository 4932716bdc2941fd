"""Where a click on a tracking link may lead: never an open redirect.

A click link carries its target and a signature over (message ref, target). With a
valid signature the target is one nudge itself put in an email, so the click goes
there, wherever it is (a shop's Instagram link is tracked too), as long as it is an
http(s) URL. Without one (forged, tampered, mangled by a mail client) the click goes
to the target only if its host is one of the shop's own (``NUDGE_REDIRECT_DOMAINS``,
default the host of ``NUDGE_SHOP_URL``), else to the shop's front page: a stranger
can never borrow the shop's tracking host to send people elsewhere.

A listed host allows its subdomains (``shop.example.com`` allows
``www.shop.example.com``, not ``shop.example.com.evil.com``): whoever owns a domain
owns the names under it.

URLs that different parsers read differently are refused outright: a backslash
(browsers read it as ``/``, Python's parser does not), whitespace or control
characters (browsers drop some), userinfo (``https://shop.example.com@evil.com``), a
host that is not plain ASCII, and anything but ``http``/``https`` (``javascript:``,
``//evil.com``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def _host(url: str) -> str | None:
    """The lowercase host of a plain http(s) URL, or None for anything doubtful."""
    if _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host or not host.isascii():
        return None
    return host


@dataclass(frozen=True, slots=True)
class RedirectPolicy:
    """``shop_url`` is where a doubtful click lands; ``hosts`` the shop's own hosts."""

    shop_url: str
    hosts: tuple[str, ...]

    def is_own(self, url: str) -> bool:
        """Whether ``url`` is a plain http(s) URL on one of the shop's hosts."""
        host = _host(url)
        if host is None:
            return False
        return any(host == own or host.endswith("." + own) for own in self.hosts)

    def destination(self, target: str | None, *, signed: bool) -> str:
        """Where a click goes: a signed target if it is plain http(s), an unsigned one
        only on the shop's hosts, else the shop's front page."""
        if target and (_host(target) is not None if signed else self.is_own(target)):
            return target
        return self.shop_url
