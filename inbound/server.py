"""``nudge inbound``: an SMTP server for what comes back by email.

The bounce domain's MX points here. Every mail is read (``inbound.reports``), the
message it names is looked up by its ref (``SentMessages``), and the effect is
published (``delivery.suppression``): a hard bounce stops the address, soft bounces
count towards one, a complaint or a ``mailto:`` unsubscribe stops the person.

The SMTP answer is the durability contract: 250 only once the effects (or the dead
letter) are acknowledged by the broker; 451 when Kafka or Redis failed, so the sending
server tries again later and nothing is lost. Unusable mail is not refused (the sender
could do nothing better with it) but kept on ``dead-letter`` with its reason and raw
bytes, for an operator to look at.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiosmtpd.smtp import SMTP, Envelope, Session

from nudge.clock import Clock, SystemClock
from nudge.delivery.return_path import bounce_domain
from nudge.delivery.sent_messages import SentMessage, SentMessages
from nudge.delivery.suppression import Publisher, Suppressions
from nudge.errors import InvalidMessage
from nudge.inbound.reports import Bounce, Complaint, Ignored, Report, Unsubscribe, read_report
from nudge.models.commands import DeadLetter
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.shutdown import ShutdownDeadline

log = logging.getLogger(__name__)

#: The largest mail taken: reports carry the returned message, ours are tens of kB.
DATA_SIZE_LIMIT = 4 * 1024 * 1024
#: What a dead letter keeps of a mail (the broker's default record limit is 1 MB).
DEAD_LETTER_BYTES = 512 * 1024
#: The ``topic`` a dead letter from here names: the mail came from no topic.
SOURCE = "inbound-smtp"


class ProducerPublisher:
    """``Publisher`` over an aiokafka producer: returns once the broker acknowledged."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self.producer.send_and_wait(topic, value, key=key, headers=headers)


class Receiver:
    """One received mail for one recipient, to its effects or a dead letter."""

    def __init__(
        self, settings: Settings, shared: SharedState, publisher: Publisher, clock: Clock
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.clock = clock
        self.sent = SentMessages(shared.redis, settings.redis_namespace)
        self.suppressions = Suppressions(settings, shared, publisher, clock)

    async def receive(self, recipient: str, raw: bytes) -> str:
        """What was done, in a word. Raises on Kafka or Redis trouble."""
        try:
            report = read_report(recipient, raw)
            return await self._apply(report)
        except InvalidMessage as exc:
            await self._dead_letter(raw, exc)
            return exc.reason

    async def _apply(self, report: Report) -> str:
        if isinstance(report, Ignored):
            log.info("inbound mail ignored: %s", report.reason)
            return report.reason
        sent = await self.sent.lookup(report.ref)
        if sent is None:
            if isinstance(report, Unsubscribe):
                # Anyone can write to unsubscribe+anything@: nothing to keep.
                log.info("unsubscribe by email for an unknown ref; nothing recorded")
                return "unknown_ref"
            raise InvalidMessage(
                "unknown_ref", f"{type(report).__name__.lower()} names no sent message"
            )
        return await self._effect(report, sent)

    async def _effect(self, report: Report, sent: SentMessage) -> str:
        s = self.suppressions
        if isinstance(report, Bounce):
            if report.hard:
                await s.hard_bounce(sent, report.detail)
                outcome = "hard_bounce"
            else:
                hard = await s.soft_bounce(report.ref, sent, report.detail)
                outcome = "hard_bounce" if hard else "soft_bounce"
        elif isinstance(report, Complaint):
            await s.opt_out(sent, "complaint", detail=report.detail, user_agent=report.user_agent)
            outcome = "complaint"
        else:
            await s.opt_out(sent, "mailto")
            outcome = "unsubscribed"
        log.info("%s: customer %s, message %s", outcome, sent.customer_id, sent.command_id)
        return outcome

    async def _dead_letter(self, raw: bytes, exc: InvalidMessage) -> None:
        log.warning("inbound mail dead-lettered: %s", exc)
        detail = exc.detail
        if len(raw) > DEAD_LETTER_BYTES:
            detail += f" (first {DEAD_LETTER_BYTES} of {len(raw)} bytes kept)"
        letter = DeadLetter(
            topic=SOURCE,
            partition=-1,
            offset=-1,
            key=None,
            value=raw[:DEAD_LETTER_BYTES],
            reason=exc.reason,
            detail=detail,
            ts=self.clock.now_ms(),
        )
        await self.publisher.publish(
            self.settings.topic("dead-letter"), letter.key, letter.value or b"", letter.headers()
        )


class InboundHandler:
    """The aiosmtpd handler: every recipient accepted, the work done at DATA."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        try:
            for recipient in envelope.rcpt_tos:
                await self.receiver.receive(recipient, data)
        except Exception:
            # Kafka or Redis away (or a bug): the sender keeps the mail and retries.
            log.exception("inbound mail could not be recorded; answered 451")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 OK"


async def serve(
    settings: Settings,
    receiver: Receiver,
    *,
    stop: asyncio.Event,
    started: asyncio.Event | None = None,
) -> None:
    """Listen on ``NUDGE_INBOUND_HOST:NUDGE_INBOUND_PORT`` until ``stop`` is set."""
    handler = InboundHandler(receiver)
    loop = asyncio.get_running_loop()

    def session() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=DATA_SIZE_LIMIT,
            # Named without a DNS lookup (aiosmtpd's default), as the MX it answers for.
            hostname=bounce_domain(settings),
            ident="nudge inbound",
            timeout=60,
        )

    server = await loop.create_server(session, settings.inbound_host, settings.inbound_port)
    log.info("inbound SMTP on %s:%s", settings.inbound_host, settings.inbound_port)
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


async def run_inbound(settings: Settings, *, stop: asyncio.Event) -> None:
    """The production wiring: Redis, a producer, the server, until ``stop``."""
    redis = aioredis.from_url(settings.redis_url or "")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        shared = SharedState(redis, settings.redis_namespace)
        receiver = Receiver(settings, shared, ProducerPublisher(producer), SystemClock())
        await serve(settings, receiver, stop=stop)
    finally:
        await producer.stop()
        await redis.aclose()


def main(settings: Settings) -> None:
    """``nudge inbound`` after its checks: runs until SIGTERM or Ctrl-C."""
    deadline = ShutdownDeadline(settings.shutdown_timeout_s, "nudge inbound")
    if settings.log_level.upper() != "DEBUG":
        # aiosmtpd logs every SMTP command of every peer at INFO: a line per bounce
        # is this module's, the dialogue is for debugging.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

    async def run() -> None:
        stop = asyncio.Event()

        def on_signal(*_: Any) -> None:
            deadline.arm()
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        await run_inbound(settings, stop=stop)

    asyncio.run(run())
