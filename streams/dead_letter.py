"""Routing unusable input records to the dead-letter topic, bytes untouched.

Letters are queued while a batch is decoded and ``flush`` sends them and waits for
the broker: a record's offset may be committed only once its dead letter is durable.
A storm of bad records costs one produce batch per partition and flush, not a send
per record; the queue holds no more than the batch in hand (references to the fetched
bytes, not copies).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TopicT

from nudge.clock import Clock
from nudge.errors import InvalidMessage
from nudge.models.commands import DeadLetter
from nudge.streams.metrics import StreamMetrics
from nudge.streams.partitions import partition_of

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
        """Send the queued letters, in order per partition, and wait until the broker
        has them all."""
        letters, self._queued = self._queued, []
        if not letters:
            return
        producer = self.topic.app.producer._ensure_producer()  # type: ignore[attr-defined]
        name = self.topic.get_topic_name()
        partitions = len(await producer.partitions_for(name))
        by_partition: dict[int, list[DeadLetter]] = {}
        for n, letter in enumerate(letters):
            # Keyed as the original record, so a customer's letters stay in order.
            where = partition_of(letter.key, partitions) if letter.key else n % partitions
            by_partition.setdefault(where, []).append(letter)
        acks = []
        for partition, group in by_partition.items():
            batch = producer.create_batch()
            for letter in group:
                record = {
                    "key": letter.key,
                    "value": letter.value if letter.value is not None else b"",
                    "timestamp": None,
                    "headers": letter.headers(),
                }
                if batch.append(**record) is None:
                    acks.append(await producer.send_batch(batch, name, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(**record) is None:
                        raise ValueError(f"a dead letter of {letter.topic} exceeds a batch")
            if batch.record_count():
                acks.append(await producer.send_batch(batch, name, partition=partition))
        await asyncio.gather(*acks)
