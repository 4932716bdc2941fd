"""What recipients did with a message: the records of the ``engagement`` topic.

Keyed by customer id, like the input topics, so a flow or an audience can read them
beside the customer's state. Opens and clicks come from the tracking endpoints;
bounces and complaints from ``nudge inbound`` and the SMTP dialogue; unsubscribes from
the unsubscribe page and the ``mailto:`` address.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import orjson

from nudge.errors import InvalidMessage

EngagementType = Literal["opened", "clicked", "unsubscribed", "bounced", "complained"]
ENGAGEMENT_TYPES: frozenset[str] = frozenset(
    {"opened", "clicked", "unsubscribed", "bounced", "complained"}
)


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One thing a recipient (or their mail system) did with one message.

    ``message_id`` is the send command's id; ``flow_id`` its flow. ``machine`` flags an
    open or click that no person made: a privacy proxy fetching every image, a link
    scanner clicking within seconds of delivery. ``bounce`` is ``hard`` or ``soft`` on
    a bounce; ``detail`` the server's words, trimmed.
    """

    event_id: str
    type: EngagementType
    customer_id: str
    message_id: str
    flow_id: str
    channel: str
    ts: int
    campaign_id: str | None = None
    variant: str | None = None
    url: str | None = None
    user_agent: str | None = None
    machine: bool | None = None
    address: str | None = None
    bounce: str | None = None
    detail: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> EngagementEvent:
        try:
            data = orjson.loads(raw)
            event = cls(**data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise InvalidMessage("bad_engagement_event", str(exc)[:200]) from exc
        if event.type not in ENGAGEMENT_TYPES:
            raise InvalidMessage("bad_engagement_event", f"unknown type {event.type!r}")
        return event
