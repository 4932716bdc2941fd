"""What the stream workers ask the delivery worker to do, and what it reports back.

``SendCommand.id`` is stable: the same abandonment episode and step always yield the
same id, which is what makes a replayed timer or a redelivered command harmless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from nudge.errors import InvalidMessage


@dataclass(frozen=True, slots=True)
class TemplateRef:
    trigger_id: str
    step: int = 0
    version: str = ""


@dataclass(frozen=True, slots=True)
class SendCommand:
    """One intended message.

    ``context`` holds what the stream worker knows: ``customer`` (profile fields),
    ``items`` (``[{product_id, quantity, price}]``), ``history`` (viewed and carted
    product ids, oldest first), ``bought`` (the latest products bought, newest first:
    never recommended), and per kind ``category`` or ``search_query``. The delivery
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
    template: TemplateRef
    context: dict[str, Any]
    due_ms: int
    created_ms: int
    marketing: bool = True

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> SendCommand:
        try:
            data = orjson.loads(raw)
            template = TemplateRef(**data.pop("template"))
            return cls(template=template, **data)
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
