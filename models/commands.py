"""What the stream workers ask the delivery worker to do, and what it reports back.

``SendCommand.id`` is stable: the same abandonment episode and step always yield the
same id, which is what makes a replayed timer or a redelivered command harmless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from nudge.errors import InvalidMessage
from nudge.models.message import (
    Message,
    MessageContext,
    PromoRequest,
    Recommendations,
    WebhookCall,
)


@dataclass(frozen=True, slots=True)
class SendCommand:
    """One intended message, with everything needed to send it.

    ``trigger_id`` is the flow's id, ``step`` the ordinal of its send step (0 for the
    flow's first message), ``version`` the flow version the run is pinned to.
    ``message`` and ``recommendations`` are the send step's, as decided.

    ``context`` is what the stream worker knew (``MessageContext``); the delivery
    worker enriches items from the catalogue and adds recommendations and links before
    rendering.
    """

    id: str
    trigger_id: str
    kind: str
    step: int
    channel: str
    customer_id: str
    recipient: str
    context: MessageContext
    due_ms: int
    created_ms: int
    marketing: bool = True
    message: Message = field(default_factory=Message)
    recommendations: Recommendations | None = None
    version: str = ""
    #: the A/B variant of the run (``split``), for comparing results
    variant: str | None = None
    #: not worth sending after this moment (the flow's ``expires_after``)
    expires_at_ms: int | None = None
    #: a promo code to give with this message (``promo.code`` in templates)
    promo: PromoRequest | None = None
    #: the flow's ``priority`` and ``on_cap``: who gets the frequency cap's slots
    priority: int = 50
    on_cap: str = "defer"
    #: to a seller (``send.to: seller``): the seller side fills in ``recipient`` from
    #: the ``sellers`` topic before the command goes to delivery
    seller_id: str | None = None
    #: ``channel: webhook``: the call to make (``recipient`` is its URL)
    webhook: WebhookCall | None = None
    #: ``channel: auto``: the channels to try, in order of preference; the delivery
    #: worker sends on the first with consent and an address (see ``channels.auto``)
    channels: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> SendCommand:
        try:
            data = orjson.loads(raw)
            # Commands from before flows named their template instead of carrying it:
            # such a message renders with the built-in templates of its kind.
            data.pop("template", None)
            data["message"] = Message(**(data.get("message") or {}))
            data["context"] = MessageContext.from_data(data.get("context") or {})
            if data.get("recommendations") is not None:
                data["recommendations"] = Recommendations(**data["recommendations"])
            if data.get("promo") is not None:
                data["promo"] = PromoRequest(**data["promo"])
            if data.get("webhook") is not None:
                data["webhook"] = WebhookCall(**data["webhook"])
            data["channels"] = tuple(data.get("channels") or ())
            return cls(**data)
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidMessage("bad_send_command", str(exc)) from exc


DELIVERY_STATUSES = frozenset({"sent", "failed", "suppressed"})


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    command_id: str
    status: str
    reason: str
    customer_id: str
    trigger_id: str
    channel: str
    ts: int
    attempts: int = 0
    detail: str = ""
    #: the A/B variant of the flow run, to compare results by
    variant: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> DeliveryEvent:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record that could not be used.

    It is republished with its original key and value bytes untouched; everything
    else travels in headers (see ``headers()``), as Kafka Connect does it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    ts: int
    original_headers: list[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, record: Any, error: InvalidMessage, now_ms: int) -> DeadLetter:
        """From any consumed record with topic, partition, offset, key, value and
        headers (a Faust message or an aiokafka record alike)."""
        raw = record.headers or ()
        items = raw.items() if hasattr(raw, "items") else raw
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=error.reason,
            detail=error.detail,
            ts=now_ms,
            original_headers=[
                (str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items
            ],
        )

    def headers(self) -> list[tuple[str, bytes]]:
        own = [
            ("nudge.dlq.reason", self.reason.encode()),
            ("nudge.dlq.detail", self.detail.encode()[:2000]),
            ("nudge.dlq.topic", self.topic.encode()),
            ("nudge.dlq.partition", str(self.partition).encode()),
            ("nudge.dlq.offset", str(self.offset).encode()),
            ("nudge.dlq.ts", str(self.ts).encode()),
        ]
        return own + list(self.original_headers)
