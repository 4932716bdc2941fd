"""What a message sent out can be traced back by: an opaque reference, and the record
behind it.

Bounces (the VERP return path), opens and clicks (tracking links), and the
``X-Nudge-Ref`` header all name a sent message. None of them may expose the
internal ids a command carries (customer, flow, command), so they carry a ``ref``
instead: 26 base32 characters of an HMAC of the command id. It is unguessable without
the secret key, short enough for an SMTP local part (at most 64 octets), and the same
for every try of a command. The delivery worker records ``ref -> SentMessage`` in Redis
when the message is handed to the server; whoever receives a ref looks it up there.
A ref that is not on record (forged, mistyped, or older than the record's TTL) names
nothing, and whoever reads it records nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from nudge.models.engagement import EngagementEvent, EngagementType
from nudge.signing import Secret, key_bytes

_CONTEXT = b"nudge.message-ref.v1:"
#: How long a sent message can be traced: bounces come in days, clicks in weeks.
DEFAULT_TTL_S = 90 * 86400


def message_ref(command_id: str, secret: Secret) -> str:
    """The opaque reference of a command's message: lowercase base32, 26 characters."""
    digest = hmac.new(key_bytes(secret), _CONTEXT + command_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message as sent: enough to attribute a bounce, an open or a click."""

    command_id: str
    customer_id: str
    trigger_id: str
    kind: str
    channel: str
    recipient: str
    sent_ms: int
    variant: str | None = None
    campaign_id: str | None = None
    #: set when the message went to a marketplace seller, not to the customer
    seller_id: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    def engagement(
        self, kind: EngagementType, event_id: str, ts: int, **details: Any
    ) -> EngagementEvent:
        """An engagement record about this message: ``details`` are the kind's own
        fields (``url``, ``bounce``, ``user_agent``, ...)."""
        return EngagementEvent(
            event_id=event_id,
            type=kind,
            customer_id=self.customer_id,
            message_id=self.command_id,
            flow_id=self.trigger_id,
            channel=self.channel,
            ts=ts,
            campaign_id=self.campaign_id,
            variant=self.variant,
            **details,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> SentMessage:
        return cls(**orjson.loads(raw))


class SentMessages:
    """``ref -> SentMessage`` in Redis, kept for ``ttl_s``."""

    def __init__(self, redis: Redis, namespace: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.redis = redis
        self.prefix = f"{namespace}:sent:"
        self.ttl_s = ttl_s

    def key(self, ref: str) -> str:
        return self.prefix + ref

    async def remember(self, ref: str, message: SentMessage) -> None:
        await self.redis.set(self.key(ref), message.to_bytes(), ex=self.ttl_s)

    async def lookup(self, ref: str) -> SentMessage | None:
        """The message ``ref`` names, or None for a ref that is not on record."""
        if not ref.isalnum() or len(ref) > 64:
            return None
        raw = await self.redis.get(self.key(ref))
        if raw is None:
            return None
        try:
            return SentMessage.from_bytes(raw if isinstance(raw, bytes) else raw.encode())
        except (orjson.JSONDecodeError, TypeError):
            return None
