"""Whether the Kafka broker still answers, for ``/health``, while a worker runs.

The Kafka clients reconnect by themselves when a broker comes back, so a worker stays
up through an outage; what it lacks is a way to say so. This watch asks the broker for
its metadata now and then: when that fails it records ``kafka`` in the worker's
``Waits`` (``/health`` answers 503 "waiting" and names the error) and logs one line,
and when the broker answers again it clears it and logs that too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nudge.kafka import client_config
from nudge.waits import Waits

log = logging.getLogger(__name__)

#: What ``Waits`` and ``/health`` call the broker.
KAFKA = "kafka"

Probe = Callable[[], Awaitable[None]]


class BrokerUnreachable(ConnectionError):
    """The broker did not answer a metadata request in time."""


def metadata_probe(bootstrap: str, timeout_s: float) -> Probe:
    """A probe that lists the broker's topics with librdkafka, off the event loop."""
    from confluent_kafka.admin import AdminClient

    # The watch logs an outage once; librdkafka's per-retry complaints would repeat it.
    admin = AdminClient(client_config(bootstrap, log_level=0))

    def ask() -> None:
        try:
            admin.list_topics(timeout=timeout_s)
        except Exception as exc:  # KafkaException: no broker answered
            raise BrokerUnreachable(f"no answer from {bootstrap} within {timeout_s:g} s") from exc

    async def probe() -> None:
        await asyncio.to_thread(ask)

    return probe


class BrokerWatch:
    def __init__(self, probe: Probe, waits: Waits, every_s: float = 5.0) -> None:
        self.probe = probe
        self.waits = waits
        self.every_s = every_s
        self.lost = False

    @classmethod
    def of(cls, bootstrap: str, waits: Waits, every_s: float = 5.0) -> BrokerWatch:
        return cls(metadata_probe(bootstrap, timeout_s=every_s), waits, every_s)

    async def check(self) -> bool:
        """Probe once and record the outcome; True when the broker answered."""
        try:
            await self.probe()
        except Exception as exc:
            self.waits.start(KAFKA, exc)
            if not self.lost:
                log.warning("Kafka broker unreachable (%s); the clients keep reconnecting", exc)
            self.lost = True
            return False
        if self.lost:
            log.warning("Kafka broker answers again")
        self.waits.stop(KAFKA)
        self.lost = False
        return True

    async def run(self) -> None:
        """Probe every ``every_s`` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.every_s)
