"""Routing unusable input records to the dead-letter topic, bytes untouched.

Letters are queued while a batch is decoded and ``flush`` sends them and waits for
the broker: a record's offset may be committed only once its dead letter is durable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TopicT

from models.commands import DeadLetter
from nudge.clock import Clock
from nudge.errors import InvalidMessage
from streams.metrics import StreamMetrics

log = logging.getLogger(__name__)


class DeadLetterSink:
    def __init__(self, topic: TopicT, clock: Clock, metrics: StreamMetrics) -> None:
        self.topic = topic
        self.clock = clock
        self.metrics = metrics
        self._queued: list[DeadLetter] = []

    def send(self, message: Any, error: InvalidMessage) -> None:
        """Queue the record for the dead-letter topic; ``flush`` ships the queue."""
        letter = DeadLetter.of(message, error, self.clock.now_ms())
        self.metrics.dead_letters.labels(message.topic, error.reason).inc()
        log.info("dead-letter %s/%s@%s: %s", letter.topic, letter.partition, letter.offset, error)
        self._queued.append(letter)

    async def flush(self) -> None:
        """Send the queued letters, in order, and wait until the broker has them all."""
        letters, self._queued = self._queued, []
        acks = [
            await self.topic.send(
                key=letter.key,
                value=letter.value if letter.value is not None else b"",
                headers=letter.headers(),
            )
            for letter in letters
        ]
        await asyncio.gather(*acks)
