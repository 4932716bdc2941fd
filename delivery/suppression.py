"""What a bounce, a complaint or an unsubscribe by email changes, and who is told.

Each is about one sent message (a ``SentMessage``, found by its ref) and ends the same
way: a consent change on ``customers`` (the record the stream worker applies to the
customer's state) and an ``EngagementEvent`` on ``engagement``, both keyed by customer
id, then the Redis view the delivery worker judges by at send time, so that the next
message is stopped at once rather than when the stream worker catches up.

* A hard bounce suppresses the ADDRESS, not the person: the ``bounce`` key names the
  address that bounced (the Deliverer compares it with each recipient), and the consent
  change carries it (``email`` and ``consent_source="bounced"``), so a customer who
  gives a new address starts clean (``streams.logic.profile``).
* A soft bounce only counts: once ``NUDGE_SOFT_BOUNCE_LIMIT`` different messages to an
  address bounced softly, it is treated as hard. Counting messages rather than reports
  makes a redelivered report, or a delay warning followed by the final failure of the
  same message, count once.
* A complaint (a spam report) and an unsubscribe by email stop the PERSON.
* A message to a marketplace seller (``SentMessage.seller_id``) carries the id of the
  customer whose order it was, but its address and its reader are the seller's: its
  hard bounce stops that address under a key of the seller's (``bounce_key``), and
  nothing is published on the customer's topics.

Topics are written first and acknowledged: they are the record, and a failure there
raises, so the SMTP side answers "try again later" and nothing is lost. Event ids are
derived from the message's command id, so a redelivered report yields the same events.
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

import orjson

from nudge.clock import Clock
from nudge.delivery.sent_messages import SentMessage
from nudge.models.engagement import EngagementEvent, EngagementType
from nudge.models.events import CustomerEvent
from nudge.settings import Settings
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)

OPTED_OUT = "unsubscribed"
#: ``consent_source`` of each kind of opt-out decided here.
ConsentSource = Literal["bounced", "complaint", "mailto"]
#: How long soft bounces of an address are remembered after the latest one.
SOFT_BOUNCE_TTL_S = 30 * 86400
#: The server's words kept on an engagement event.
_DETAIL_CHARS = 500


class Publisher(Protocol):
    """Sends one record and returns once the broker acknowledged it."""

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...


def bounce_key(
    shared: SharedState, customer_id: str, channel: str, seller_id: str | None = None
) -> str:
    """The Redis key naming the address of a customer's (or seller's) channel that
    hard-bounced."""
    return shared.key("bounce", f"seller:{seller_id}" if seller_id else customer_id, channel)


def soft_bounce_key(shared: SharedState, address: str) -> str:
    return shared.key("soft-bounces", address.lower())


def consent_change(sent: SentMessage, source: ConsentSource, now_ms: int) -> CustomerEvent:
    """The opt-out, as a ``customers`` upsert with its evidence.

    On a bounce ``email`` names the address that bounced, not a new one: the stream
    worker ignores the bounce of an address the customer no longer has.
    """
    return CustomerEvent(
        event_id=f"{source}:{sent.command_id}",
        customer_id=sent.customer_id,
        ts=now_ms,
        email=sent.recipient if source == "bounced" and sent.channel == "email" else None,
        consent={sent.channel: OPTED_OUT},
        consent_ts=now_ms,
        consent_source=source,
    )


def engagement(
    sent: SentMessage,
    kind: EngagementType,
    now_ms: int,
    *,
    bounce: Literal["hard", "soft"] | None = None,
    detail: str = "",
    user_agent: str | None = None,
) -> EngagementEvent:
    suffix = f":{bounce}" if bounce else ""
    return sent.engagement(
        kind,
        f"{kind}{suffix}:{sent.command_id}",
        now_ms,
        address=sent.recipient,
        bounce=bounce,
        detail=detail[:_DETAIL_CHARS] or None,
        user_agent=user_agent,
    )


def customer_bytes(event: CustomerEvent) -> bytes:
    """The upsert as the ``customers`` topic carries it: fields left unset are absent."""
    return orjson.dumps({k: v for k, v in event.asdict().items() if v is not None})


class Suppressions:
    """The effects of feedback on sent messages; see the module's docstring."""

    def __init__(
        self, settings: Settings, shared: SharedState, publisher: Publisher, clock: Clock
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.redis = shared.redis
        self.publisher = publisher
        self.clock = clock

    async def _tell(
        self, sent: SentMessage, change: CustomerEvent | None, event: EngagementEvent
    ) -> None:
        if sent.seller_id:
            log.info(
                "feedback on seller %s's message %s: %s",
                sent.seller_id,
                sent.command_id,
                event.type,
            )
            return
        key = sent.customer_id.encode()
        if change is not None:
            await self.publisher.publish(
                self.settings.topic("customers"), key, customer_bytes(change)
            )
        await self.publisher.publish(self.settings.topic("engagement"), key, event.to_bytes())

    async def hard_bounce(self, sent: SentMessage, detail: str) -> None:
        """The address does not take mail: no message goes to it again."""
        now = self.clock.now_ms()
        change = consent_change(sent, "bounced", now)
        await self._tell(
            sent, change, engagement(sent, "bounced", now, bounce="hard", detail=detail)
        )
        pipe = self.redis.pipeline(transaction=False)
        key = bounce_key(self.shared, sent.customer_id, sent.channel, sent.seller_id)
        pipe.set(key, sent.recipient)
        pipe.delete(soft_bounce_key(self.shared, sent.recipient))
        await pipe.execute()

    async def soft_bounce(self, ref: str, sent: SentMessage, detail: str) -> bool:
        """Counted; True when it made the address's ``NUDGE_SOFT_BOUNCE_LIMIT``-th and
        was taken as hard."""
        key = soft_bounce_key(self.shared, sent.recipient)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(key, ref)
        pipe.expire(key, SOFT_BOUNCE_TTL_S)
        pipe.scard(key)
        count = int((await pipe.execute())[2])
        limit = self.settings.soft_bounce_limit
        if count >= limit:
            await self.hard_bounce(
                sent, f"{count} soft bounces (NUDGE_SOFT_BOUNCE_LIMIT={limit}): {detail}"
            )
            return True
        now = self.clock.now_ms()
        await self._tell(sent, None, engagement(sent, "bounced", now, bounce="soft", detail=detail))
        return False

    async def opt_out(
        self,
        sent: SentMessage,
        source: Literal["complaint", "mailto"],
        *,
        detail: str = "",
        user_agent: str | None = None,
    ) -> None:
        """The person asked for no more: a spam report, or an unsubscribe by email."""
        now = self.clock.now_ms()
        kind: EngagementType = "complained" if source == "complaint" else "unsubscribed"
        event = engagement(sent, kind, now, detail=detail, user_agent=user_agent)
        await self._tell(sent, consent_change(sent, source, now), event)
        if not sent.seller_id:
            await self.shared.set_consent(sent.customer_id, sent.channel, OPTED_OUT)
