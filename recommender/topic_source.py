"""Training interactions replayed from the ``clickstream`` and ``orders`` topics.

Product views become ``view`` interactions, cart adds ``cart_add``, and every placed
order one ``purchase`` per distinct product, historical imports included: they are
real purchases, only too old to mail about. Other kinds (searches, category views,
cart removals, status changes) carry no product preference and are skipped and
counted, as are records the codec refuses: a bad record never stops a training run.

The topics are read whole, every partition, by assignment (no consumer group, nothing
committed), up to the end they had when the read began; see :class:`EndOfTopics`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nudge.codec import decode_click, decode_order, decode_product
from nudge.errors import InvalidMessage
from nudge.models.events import ClickEvent, OrderEvent
from nudge.recommender.data import ReadStats
from nudge.recommender.errors import DataError
from nudge.recommender.training import PURCHASE_TYPES, Interactions, InteractionsBuilder
from nudge.settings import Settings

#: Clickstream event type -> interaction type (a key of the event weights).
CLICK_INTERACTIONS: Mapping[str, str] = {"product_view": "view", "cart_add": "cart_add"}
PURCHASE = "purchase"
TOPICS = ("clickstream", "orders")
#: Read alongside, when it exists: the products' categories, for ``popular`` per category.
CATALOG = "catalog"
BEFORE_SINCE = "before --since"

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Row:
    """One interaction: ``ts`` in epoch seconds, ``type`` a key of the event weights."""

    customer_id: str
    product_id: str
    type: str
    ts: float


def event_rows(event: ClickEvent | OrderEvent) -> list[Row]:
    """The interactions an event stands for; none for a kind that says nothing of taste."""
    ts = event.ts / 1000.0
    if isinstance(event, OrderEvent):
        if event.type != "order_placed":
            return []
        # A product listed twice in one order was still bought once, by one decision.
        products = dict.fromkeys(item.product_id for item in event.items)
        return [Row(event.customer_id, p, PURCHASE, ts) for p in products]
    kind = CLICK_INTERACTIONS.get(event.type)
    if kind is None or not event.product_id:
        return []
    return [Row(event.customer_id, event.product_id, kind, ts)]


@dataclass(slots=True)
class TopicReadStats(ReadStats):
    """``rows`` counts records read and ``used`` those that gave interactions."""

    undecodable: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)

    @property
    def undecodable_total(self) -> int:
        return sum(self.undecodable.values())


class EndOfTopics:
    """Decides which records belong to the snapshot and when the snapshot is complete.

    A partition's end is its high watermark taken at start. Real Kafka reports the end
    of the log there, but Tansu reports the base offset of the log's last record batch
    plus one, so the other records of that batch sit at or past the "end". Hence:

    * a record below the end is always taken; a partition is *reached* once a record
      (or the consumer position) gets there;
    * a record at or past the end is taken unless its timestamp is later than the start
      of the read: then it was produced after we began, and the partition is *closed*
      (anything after it is newer still);
    * the read is over when every partition is reached and either all are closed or no
      record has been taken for ``quiet_s``: the tail of a batch comes in the same fetch
      as its head, so a second of silence means there is nothing more of it to come.

    Without a reached end, ``stalled`` turns true after ``stall_s`` of silence.
    """

    def __init__(
        self,
        ends: Mapping[TopicPartitionKey, int],
        started_ms: int,
        quiet_s: float = 1.0,
        stall_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ends = dict(ends)
        self.started_ms = started_ms
        self.quiet_s = quiet_s
        self.stall_s = stall_s
        self.clock = clock
        self.positions: dict[TopicPartitionKey, int] = dict.fromkeys(ends, 0)
        self.closed: set[TopicPartitionKey] = set()
        self.last_taken = clock()

    def reached(self, tp: TopicPartitionKey) -> bool:
        return self.positions[tp] >= self.ends[tp]

    def advance(self, tp: TopicPartitionKey, position: int) -> None:
        """The consumer's position, which also moves past records never delivered."""
        self.positions[tp] = max(self.positions[tp], position)

    def take(self, tp: TopicPartitionKey, offset: int, ts_ms: int | None) -> bool:
        """Whether the record at ``offset`` belongs to the snapshot."""
        if tp in self.closed:
            return False
        if offset >= self.ends[tp] and ts_ms is not None and ts_ms > self.started_ms:
            self.closed.add(tp)
            return False
        self.advance(tp, offset + 1)
        self.last_taken = self.clock()
        return True

    def finished(self) -> bool:
        if not all(self.reached(tp) for tp in self.ends):
            return False
        return len(self.closed) == len(self.ends) or self.clock() - self.last_taken >= self.quiet_s

    def stalled(self) -> bool:
        return not self.finished() and self.clock() - self.last_taken >= self.stall_s

    def behind(self) -> list[str]:
        return [
            f"{topic}[{partition}] at {self.positions[(topic, partition)]} of "
            f"{self.ends[(topic, partition)]}"
            for topic, partition in sorted(self.ends)
            if not self.reached((topic, partition))
        ]


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class InteractionCollector:
    """Turns records into interactions and counts what became of each."""

    def __init__(
        self, event_weights: Mapping[str, float], since_ms: int | None, max_bytes: int
    ) -> None:
        self.event_weights = event_weights
        self.since_ms = since_ms
        self.max_bytes = max_bytes
        self.builder = InteractionsBuilder()
        self.stats = TopicReadStats()
        self.categories: dict[str, list[str]] = {}

    def add(self, kind: str, value: bytes | None, headers: Any) -> None:
        stats = self.stats
        stats.rows += 1
        _count(stats.by_topic, kind)
        if kind == CATALOG:
            self._add_product(value, headers)
            return
        try:
            event = (decode_click if kind == "clickstream" else decode_order)(
                value, headers, self.max_bytes
            )
        except InvalidMessage as exc:
            _count(stats.undecodable, exc.reason)
            return
        if self.since_ms is not None and event.ts < self.since_ms:
            _count(stats.skipped_types, BEFORE_SINCE)
            return
        rows = event_rows(event)
        if not rows:
            _count(stats.skipped_types, event.type)
            return
        used = False
        for row in rows:
            weight = self.event_weights.get(row.type)
            if weight is None or weight <= 0:
                _count(stats.skipped_types, row.type if weight is None else "non-positive weight")
                continue
            self.builder.add(
                row.customer_id,
                row.product_id,
                float(weight),
                row.ts,
                purchase=row.type in PURCHASE_TYPES,
            )
            used = True
        if used:
            stats.used += 1

    def _add_product(self, value: bytes | None, headers: Any) -> None:
        if value is None:  # a tombstone: the key alone, nothing to learn
            return
        try:
            product = decode_product(value, headers, self.max_bytes)
        except InvalidMessage as exc:
            _count(self.stats.undecodable, exc.reason)
            return
        # the compacted topic's later record of a product wins, as in the catalogue
        self.categories[product.product_id] = [str(c) for c in product.category_ids]


def _reason(exc: Exception) -> str:
    error = exc.args[0] if exc.args else exc
    return str(error.str() if hasattr(error, "str") else error)


def _consumer(settings: Settings) -> Any:
    from confluent_kafka import Consumer

    from nudge.kafka import client_config

    return Consumer(
        client_config(
            settings.kafka_bootstrap,
            **{
                # Required by the client, never joined: partitions are assigned.
                "group.id": f"{settings.app_id}-train",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "allow.auto.create.topics": False,
            },
        )
    )


def _watermarks(
    consumer: Any, names: Iterable[str], timeout_s: float
) -> dict[TopicPartitionKey, tuple[int, int]]:
    from confluent_kafka import KafkaException, TopicPartition

    marks: dict[TopicPartitionKey, tuple[int, int]] = {}
    for name in names:
        try:
            topic = consumer.list_topics(name, timeout=timeout_s).topics[name]
            if topic.error is not None:
                raise DataError(f"topic {name!r}: {topic.error.str()} (run `nudge topics create`?)")
            for p in sorted(topic.partitions):
                marks[(name, p)] = consumer.get_watermark_offsets(
                    TopicPartition(name, p), timeout=timeout_s, cached=False
                )
        except KafkaException as exc:
            raise DataError(f"cannot read {name!r}: {_reason(exc)}") from None
    return marks


def read_topics(
    settings: Settings,
    event_weights: Mapping[str, float],
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    since_s: float | None = None,
    quiet_s: float = 1.0,
    stall_s: float = 30.0,
    timeout_s: float = 10.0,
) -> tuple[Interactions, TopicReadStats, dict[str, list[str]]]:
    """Interactions from ``clickstream`` and ``orders`` as they stand now, and the
    products' category paths from ``catalog`` when that topic exists.

    ``on_total`` gets the number of records expected, an estimate raised again when
    more come (see :class:`EndOfTopics`); ``progress`` the records read since its
    last call.
    ``since_s`` keeps only events whose own time is within that many seconds of now.
    Raises :class:`DataError` when Kafka cannot be read or the topics are empty.
    """
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaException, TopicPartition

    kinds = {settings.topic(t): t for t in TOPICS}
    catalog = settings.topic(CATALOG)
    since_ms = None if since_s is None else int((time.time() - since_s) * 1000)
    collector = InteractionCollector(event_weights, since_ms, settings.max_payload_bytes)
    consumer = _consumer(settings)
    try:
        marks = _watermarks(consumer, kinds, timeout_s)
        # An empty partition is left out: anything that comes to it now is not ours.
        if not any(high > low for low, high in marks.values()):
            raise DataError(f"topics {', '.join(kinds)} are empty: nothing to train on")
        with contextlib.suppress(DataError):  # no catalogue: no per-category lists
            marks.update(_watermarks(consumer, [catalog], timeout_s))
            kinds[catalog] = CATALOG
        started_ms = int(time.time() * 1000)
        ends = {tp: high for tp, (low, high) in marks.items() if high > low}
        expected = sum(high - marks[tp][0] for tp, high in ends.items())
        if on_total is not None:
            on_total(expected)
        end = EndOfTopics(ends, started_ms, quiet_s, stall_s)
        consumer.assign([TopicPartition(t, p, marks[(t, p)][0]) for t, p in ends])
        paused: set[TopicPartitionKey] = set()
        while not end.finished():
            before = collector.stats.rows
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    if message.error().fatal():
                        raise DataError(f"reading failed: {message.error().str()}")
                    continue
                tp = (message.topic(), message.partition())
                ts_type, ts_ms = message.timestamp()
                stamp = None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms
                if end.take(tp, message.offset(), stamp):
                    collector.add(kinds[tp[0]], message.value(), message.headers())
                elif tp not in paused:
                    consumer.pause([TopicPartition(*tp)])
                    paused.add(tp)
            for position in consumer.position([TopicPartition(*tp) for tp in ends]):
                end.advance((position.topic, position.partition), position.offset)
            if on_total is not None and collector.stats.rows > expected:
                expected = collector.stats.rows
                on_total(expected)
            if progress is not None and collector.stats.rows > before:
                progress(collector.stats.rows - before)
            if end.stalled():
                raise DataError(
                    f"no records for {stall_s:g} s before the end: {', '.join(end.behind())}"
                )
    except KafkaException as exc:
        raise DataError(f"reading failed: {_reason(exc)}") from None
    finally:
        consumer.close()
    return collector.builder.build(), collector.stats, collector.categories
