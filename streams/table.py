"""The ``customer-state`` table, written with an explicit partition.

Faust derives the changelog partition from the *current event*, which a batch of
events from several partitions, or a timer, does not have. Every state records the
partition its customer's events arrive on, and writes go to that partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import faust

from models.state import CustomerState
from streams import state_codec


class _StateValueType:
    """What Faust asks of a table's ``value_type``: a serializer name and ``from_data``.

    The codec already returns ``CustomerState`` objects, so ``from_data`` passes them on.
    """

    class _options:
        serializer = state_codec.CODEC_NAME

    @staticmethod
    def from_data(data: Any, preferred_type: Any = None) -> Any:
        return data


def declare_table(app: faust.App, name: str, partitions: int) -> Any:
    state_codec.register()
    return app.Table(
        name, default=None, partitions=partitions, key_type=bytes, value_type=_StateValueType
    )


class StateStore:
    """Reads and writes of customer state, with the changelog only on real change.

    Writes land in the local store at once and are queued for the changelog;
    ``flush`` ships them as one produce batch per partition, which costs far less
    than Faust's message-at-a-time path. Faust flushes its producer before it
    commits source offsets; ``flush`` also waits for the broker's acknowledgement,
    because a batch's input offsets may be committed only once its state is durable.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._queued: dict[int, dict[bytes, CustomerState]] = {}

    def get(self, key: bytes) -> CustomerState | None:
        value = self.table.data.get(key)
        return value if isinstance(value, CustomerState) else None

    def put(self, key: bytes, state: CustomerState) -> None:
        self.table.data[key] = state
        self._queued.setdefault(state.partition, {})[key] = state

    async def flush(self) -> None:
        if not self._queued:
            return
        queued, self._queued = self._queued, {}
        producer = self.table.app.producer._ensure_producer()
        topic = self.table.changelog_topic.get_topic_name()
        acks: list[Any] = []
        for partition, states in queued.items():
            records = [(k, state_codec.state_to_bytes(s)) for k, s in states.items()]
            # The last record always travels alone: Tansu reports a partition's high
            # watermark as the base offset of its last batch plus one, and Faust's
            # recovery reads only up to the high watermark.
            for group in (records[:-1], records[-1:]):
                batch = producer.create_batch()
                for key, value in group:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        acks.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                if batch.record_count():
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    def items(self) -> Iterator[tuple[bytes, CustomerState]]:
        for key, value in self.table.data.items():
            if isinstance(value, CustomerState):
                yield key, value
