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
import hashlib
import hmac
import uuid
from dataclasses import dataclass
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


def click_sig(key: bytes, ref: str, target: str) -> str:
    """The signature of a click on ``target`` in the message ``ref``."""
    mac = hmac.new(key, _CONTEXT + ref.encode() + b"\n" + target.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii")[:SIG_CHARS]


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
    key: bytes
    opens: bool
    clicks: bool
    skip_prefixes: tuple[str, ...]

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
        return cls(base, ref, key_bytes(secret), opens, clicks, own)

    def pixel_url(self) -> str:
        return f"{self.base_url}/o/{self.ref}.gif"

    def pixel_html(self) -> str:
        return (
            f'<img src="{self.pixel_url()}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )

    def click_url(self, target: str) -> str:
        """The tracked link to ``target``; nudge's own links come back unchanged."""
        if target.startswith(self.skip_prefixes):
            return target
        sig = click_sig(self.key, self.ref, target)
        # ":" and "/" may stand unescaped in a query value; they keep the URL shorter.
        return f"{self.base_url}/c/{self.ref}/{sig}?u={quote(target, safe=':/')}"


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
    return EngagementEvent(
        event_id=f"{action}:{uuid.uuid4().hex}",
        type=action,
        customer_id=sent.customer_id,
        message_id=sent.command_id,
        flow_id=sent.trigger_id,
        channel=sent.channel,
        ts=now_ms,
        campaign_id=sent.campaign_id,
        variant=sent.variant,
        url=url,
        user_agent=(user_agent or None) and user_agent[:512],
        machine=reason is not None,
    )
