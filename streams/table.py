"""The worker's tables (``customer-state``, ``product-audience``), written with an
explicit partition.

Faust derives the changelog partition from the *current event*, which a batch of
events from several partitions, or a timer, does not have. Every value records the
partition its key's events arrive on, and writes go to that partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import faust
from faust.serializers import codecs
from faust.types import TP

from nudge.flows.triggers.catalog import ProductAudience
from nudge.models.sellers import SellerState
from nudge.models.state import CustomerState
from nudge.streams import audience_codec, seller_codec, state_codec
from nudge.streams.rocks import RocksBacking, is_rocksdb

V = TypeVar("V")

log = logging.getLogger(__name__)
#: Decoded values kept by a RocksDB-backed store (``NUDGE_STATE_CACHE``).
DEFAULT_CACHE_SIZE = 100_000


def _value_type(codec_name: str) -> type:
    """What Faust asks of a table's ``value_type``: a serializer name and ``from_data``.

    The codec already returns the value objects, so ``from_data`` passes them on.
    """

    class ValueType:
        class _options:
            serializer = codec_name

        @staticmethod
        def from_data(data: Any, preferred_type: Any = None) -> Any:
            return data

    return ValueType


class _Codec(codecs.Codec):
    """A table's value codec from its two functions."""

    def __init__(self, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]) -> None:
        super().__init__()
        self._to_bytes, self._from_bytes = dumps, loads

    def _dumps(self, obj: Any) -> bytes:
        return self._to_bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return self._from_bytes(s)


def _declare(
    app: faust.App,
    name: str,
    partitions: int,
    codec_name: str,
    dumps: Callable[[Any], bytes],
    loads: Callable[[bytes], Any],
) -> Any:
    """A table keyed by bytes whose values travel with ``codec_name``, registered once
    (Faust looks codecs up by name when the table serializes)."""
    if codec_name not in codecs.codecs:
        codecs.register(codec_name, _Codec(dumps, loads))
    return app.Table(
        name,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=_value_type(codec_name),
    )


def declare_table(app: faust.App, name: str, partitions: int) -> Any:
    """The ``customer-state`` table."""
    codec = state_codec
    return _declare(
        app, name, partitions, codec.CODEC_NAME, codec.state_to_bytes, codec.state_from_bytes
    )


def declare_audience_table(app: faust.App, partitions: int) -> Any:
    """The ``product-audience`` table, keyed by product id."""
    codec = audience_codec
    return _declare(
        app,
        "product-audience",
        partitions,
        codec.CODEC_NAME,
        codec.audience_to_bytes,
        codec.audience_from_bytes,
    )


def declare_seller_table(app: faust.App, partitions: int) -> Any:
    """The ``seller-state`` table, keyed by seller id."""
    codec = seller_codec
    return _declare(
        app, "seller-state", partitions, codec.CODEC_NAME, codec.seller_to_bytes,
        codec.seller_from_bytes,
    )  # fmt: skip


class ChangelogStore(Generic[V]):
    """Reads and writes of a table's values, with the changelog only on real change.

    Writes land in the local store at once and are queued for the changelog;
    ``flush`` ships them as one produce batch per partition, which costs far less
    than Faust's message-at-a-time path. Faust flushes its producer before it
    commits source offsets; ``flush`` also waits for the broker's acknowledgement,
    because a batch's input offsets may be committed only once its state is durable.
    """

    def __init__(
        self,
        table: Any,
        value_type: type[V],
        encode: Callable[[V], bytes],
        partition_of: Callable[[V], int],
        decode: Callable[[bytes], V],
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.table = table
        self.value_type = value_type
        self.encode = encode
        self.partition_of = partition_of
        self.decode = decode
        self.cache_size = cache_size
        self._queued: dict[int, dict[bytes, V]] = {}
        self._shipping = asyncio.Lock()
        self._unacked: list[asyncio.Future[Any]] = []
        self.failed: BaseException | None = None
        self._backing: RocksBacking[V] | bool | None = False  # False: not known yet
        #: with RocksDB: what was shipped, waiting for its acknowledgements
        self._shipments: list[tuple[list[Any], dict[int, list[tuple[bytes, bytes]]], Any]] = []

    @property
    def rocks(self) -> RocksBacking[V] | None:
        """The RocksDB side of the table, or None for the memory store."""
        if self._backing is False:
            data = self.table.data
            self._backing = (
                RocksBacking(data, self.decode, self.cache_size) if is_rocksdb(data) else None
            )
        return self._backing  # type: ignore[return-value]

    def get(self, key: bytes) -> V | None:
        rocks = self.rocks
        if rocks is not None:
            return rocks.get(key)
        value = self.table.data.get(key)
        return value if isinstance(value, self.value_type) else None

    def put(self, key: bytes, value: V) -> None:
        rocks = self.rocks
        if rocks is not None:
            rocks.put(key, value)  # the database takes it once the changelog has it
        else:
            self.table.data[key] = value
        self._queued.setdefault(self.partition_of(value), {})[key] = value

    def recovered(self) -> None:
        """Partitions were recovered: the database is the truth again."""
        if self.rocks is not None:
            self.rocks.forget_cache()

    async def flush(self) -> None:
        """Return once every state ``put`` before the call is acknowledged.

        Agents and the timer share the queue: a flush may ship another caller's
        states. So shipping is serialised, and each caller waits for every
        acknowledgement outstanding when its own shipping ended, not just its own.
        """
        if self.failed is not None:
            raise self.failed
        async with self._shipping:
            if self._queued:
                queued, self._queued = self._queued, {}
                encoded = {
                    partition: [(k, self.encode(v)) for k, v in states.items()]
                    for partition, states in queued.items()
                }
                acks = await self._ship(encoded)
                self._unacked.extend(acks)
                if self.rocks is not None:
                    self._shipments.append((acks, encoded, queued))
            waiting = list(self._unacked)
        if not waiting:
            return
        try:
            await asyncio.gather(*waiting)
        except Exception as exc:
            # The local store is now ahead of its changelog, and which caller's
            # states were lost is unknown: nothing more may count as applied. Like
            # Kafka Streams, stop; a restart recovers from the changelog and replays
            # every input record not committed.
            self.failed = exc
            log.critical("changelog write failed (%s); stopping the worker", exc)
            self.table.app.loop.create_task(self.table.app.crash(exc))
            raise
        self._unacked = [ack for ack in self._unacked if not ack.done()]
        if self.rocks is not None:
            self._settle(self.rocks)

    def _settle(self, rocks: RocksBacking[V]) -> None:
        """Into the database, in order, every shipment the changelog acknowledged, with
        the offset it reached per changelog partition: a restart reads from there."""
        while self._shipments and all(ack.done() for ack in self._shipments[0][0]):
            acks, encoded, values = self._shipments.pop(0)
            rocks.write(encoded)
            rocks.written(values)
            last: dict[Any, int] = {}
            for metadata, count in (ack.result() for ack in acks):
                tp = TP(metadata.topic, metadata.partition)
                last[tp] = max(last.get(tp, -1), metadata.offset + count - 1)
            for tp, offset in last.items():
                rocks.persisted(tp, offset)

    async def _ship(self, encoded: dict[int, list[tuple[bytes, bytes]]]) -> list[Any]:
        """Send the records; one future per produce batch, resolving to (its broker
        metadata, its record count)."""
        producer = self.table.app.producer._ensure_producer()
        topic = self.table.changelog_topic.get_topic_name()
        acks: list[Any] = []

        async def send(batch: Any, partition: int) -> None:
            count = batch.record_count()  # before the batch is built and sent
            future = await producer.send_batch(batch, topic, partition=partition)
            acks.append(asyncio.ensure_future(_counted(future, count)))

        for partition, records in encoded.items():
            # The last record always travels alone: Tansu reports a partition's high
            # watermark as the base offset of its last batch plus one, and Faust's
            # recovery reads only up to the high watermark.
            for group in (records[:-1], records[-1:]):
                batch = producer.create_batch()
                for key, value in group:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        await send(batch, partition)
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                if batch.record_count():
                    await send(batch, partition)
        return acks

    def items(self) -> Iterator[tuple[bytes, V]]:
        rocks = self.rocks
        if rocks is not None:
            yield from rocks.items()
            return
        for key, value in self.table.data.items():
            if isinstance(value, self.value_type):
                yield key, value


async def _counted(future: Awaitable[Any], count: int) -> tuple[Any, int]:
    return await future, count


class StateStore(ChangelogStore[CustomerState]):
    """``customer-state``: each state carries the partition of its customer's events."""

    def __init__(self, table: Any, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(
            table,
            CustomerState,
            state_codec.state_to_bytes,
            lambda state: state.partition,
            state_codec.state_from_bytes,
            cache_size,
        )


class AudienceStore(ChangelogStore[ProductAudience]):
    """``product-audience``: each value carries the partition of its product's records."""

    def __init__(self, table: Any) -> None:
        super().__init__(
            table,
            ProductAudience,
            audience_codec.audience_to_bytes,
            lambda a: a.partition,
            audience_codec.audience_from_bytes,
        )


class SellerStore(ChangelogStore[SellerState]):
    """``seller-state``: each value carries the partition of its seller's records."""

    def __init__(self, table: Any) -> None:
        super().__init__(
            table,
            SellerState,
            seller_codec.seller_to_bytes,
            lambda s: s.partition,
            seller_codec.seller_from_bytes,
        )
