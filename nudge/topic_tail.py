"""Reading a small control topic whole, from the beginning, in every process.

Trigger definitions and model announcements must reach every worker whatever
partitions it owns, so they are read without a consumer group. ``ready`` is set once
everything that was on the topic at start-up has been applied.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from nudge.errors import ConfigError

log = logging.getLogger(__name__)

#: Called per record; an awaitable result is awaited before the next record.
Apply = Callable[[bytes | None, bytes | None], object]


class TopicTail:
    def __init__(self, bootstrap: str, topic: str, apply: Apply) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.apply = apply
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            while stop is None or not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        outcome = self.apply(record.key, record.value)
                        if inspect.isawaitable(outcome):
                            await outcome
                if not self.ready.is_set() and all(
                    [await consumer.position(tp) >= end[tp] for tp in tps]
                ):
                    self.ready.set()
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: Any) -> set[int]:
        for _ in range(100):
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return set(partitions)
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise ConfigError(f"topic {self.topic!r} does not exist: run `nudge topics create`")
