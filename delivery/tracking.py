"""Open and click tracking: the links a message carries, and reading them back.

* Open pixel: ``{tracking}/o/<ref>.gif``. The ref (``sent_messages.message_ref``) is
  an HMAC of the command id already: unguessable, so it needs no signature of its own.
* Click: ``{tracking}/c/<ref>/<sig>?u=<target>``, where ``target`` is the link's URL
  after UTM tagging and ``sig`` a truncated HMAC of (ref, target). The redirect goes
  straight to the target (one hop, UTM kept); see ``redirects`` for unsigned ones.

Only the HTML part is rewritten. The text part keeps the shop's own URLs: a person
reading plain text sees where a link goes, and a long opaque one there looks like
phishing. Links to nudge's own pages (unsubscribe, confirm, the tracking host) are
never wrapped: they are signed already, and a redirect would break one-click
unsubscribe. ``mailto:`` and ``tel:`` are not http(s) and are never touched.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import html
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nudge.delivery.machine import Action, machine_reason
from nudge.delivery.sent_messages import SentMessage
from nudge.models.engagement import EngagementEvent
from nudge.signing import Secret, key_bytes

# Domain separation: a click signature is never valid as any other HMAC of the key.
_CONTEXT = b"nudge.click.v1:"
#: Signature length in base64url characters: 96 bits, plenty against forging one link.
SIG_CHARS = 16

#: A 1x1 transparent GIF (43 bytes).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(x ^ 0x36 for x in range(256))  # translation tables, as ``hmac`` has them
_OPAD = bytes(x ^ 0x5C for x in range(256))

#: HMAC-SHA256 (RFC 2104) as its two hash states after the padded key, the inner one
#: fed the context and the ref: each link of a message copies them and hashes only its
#: target. (``hmac.HMAC.copy`` does the same with a Python object around it per link.)
_RefMac = tuple[Any, Any]


def _ref_mac(key: bytes, ref: str) -> _RefMac:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    inner.update(_CONTEXT + ref.encode() + b"\n")
    outer = hashlib.sha256(key.translate(_OPAD))
    return inner, outer


def _sig(ref_mac: _RefMac, target: str) -> str:
    inner, outer = ref_mac[0].copy(), ref_mac[1].copy()
    inner.update(target.encode())
    outer.update(inner.digest())
    # 12 bytes are 16 base64 characters, without padding.
    return base64.urlsafe_b64encode(outer.digest()[: SIG_CHARS * 3 // 4]).decode("ascii")


def click_sig(key: bytes, ref: str, target: str) -> str:
    """The signature of a click on ``target`` in the message ``ref``."""
    return _sig(_ref_mac(key, ref), target)


# Every message of a campaign links the same few hundred UTM-tagged URLs, and quote()
# walks a URL character by character in Python: remember them (as links.py does).
@functools.lru_cache(maxsize=4096)
def _quoted(target: str) -> str:
    # ":", "/", "?" and "=" may stand unescaped in a query value: the link stays shorter
    # and its target readable ("utm_source=nudge"). "&", "+", "#" and "%" may not.
    return quote(target, safe=":/?=")


def valid_click(key: bytes, ref: str, sig: str, target: str | None) -> bool:
    """Whether ``sig`` signs ``target`` for ``ref`` (in constant time)."""
    if not target or len(sig) != SIG_CHARS:
        return False
    return hmac.compare_digest(sig.encode(), click_sig(key, ref, target).encode())


@dataclass(frozen=True, slots=True)
class TrackingLinks:
    """What the renderer needs to track one message: built by the Deliverer per send.

    ``skip_prefixes`` are URLs never wrapped: nudge's own pages and the tracking host.
    """

    base_url: str
    ref: str
    opens: bool
    clicks: bool
    skip_prefixes: tuple[str, ...]
    _ref_mac: _RefMac = field(repr=False, compare=False)
    _base_href: str = field(repr=False, compare=False)

    @classmethod
    def for_message(
        cls,
        *,
        tracking_url: str,
        public_url: str,
        ref: str,
        secret: Secret,
        opens: bool = True,
        clicks: bool = True,
    ) -> TrackingLinks:
        base = tracking_url.rstrip("/")
        public = public_url.rstrip("/")
        own = (f"{base}/", f"{public}/unsubscribe/", f"{public}/confirm/")
        # Only the keyed hash states are kept, never the key itself (nor in a repr).
        mac = _ref_mac(key_bytes(secret), ref)
        return cls(base, ref, opens, clicks, own, mac, html.escape(base, quote=True))

    def pixel_url(self) -> str:
        return f"{self.base_url}/o/{self.ref}.gif"

    def pixel_html(self) -> str:
        return (
            f'<img src="{self._base_href}/o/{self.ref}.gif" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )

    def click_url(self, target: str) -> str:
        """The tracked link to ``target``; nudge's own links come back unchanged."""
        return html.unescape(self.click_href(target))

    def click_href(self, target: str) -> str:
        """``click_url`` as an HTML attribute value (for ``tag_html_links``' ``wrap``)."""
        if target.startswith(self.skip_prefixes):
            return html.escape(target, quote=True)
        sig = _sig(self._ref_mac, target)
        # The ref is alphanumeric, the signature base64url and the quoted target all
        # unreserved characters and "%:/?=": only the base could need HTML escaping.
        return f"{self._base_href}/c/{self.ref}/{sig}?u={_quoted(target)}"


def engagement_event(
    action: Action,
    sent: SentMessage,
    *,
    now_ms: int,
    user_agent: str | None,
    url: str | None = None,
    head: bool = False,
) -> EngagementEvent:
    """The engagement record of an open or click of the message ``sent``."""
    reason = machine_reason(action, user_agent, sent_ms=sent.sent_ms, now_ms=now_ms, head=head)
    return sent.engagement(
        action,
        f"{action}:{uuid.uuid4().hex}",
        now_ms,
        url=url,
        user_agent=(user_agent or None) and user_agent[:512],
        machine=reason is not None,
    )
