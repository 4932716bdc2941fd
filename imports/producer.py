"""One confluent-kafka producer per import, tuned for bulk, with failures counted."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from nudge.kafka import producer_config

# Bulk settings: big batches and a longer linger trade latency (nobody waits on an
# import record) for throughput; lz4 is cheap on CPU and shrinks JSON ~3x (the workers
# read it through cramjam, a dependency for that reason). The local queue is what a
# slow broker lets pile up: 64 MB is seconds of records at full speed, and keeps an
# import's memory bounded (a full queue makes ``send`` wait).
BULK_CONFIG: dict[str, Any] = {
    "linger.ms": 50,
    "batch.num.messages": 100_000,
    "batch.size": 4 * 1024 * 1024,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 64 * 1024,
    "compression.type": "lz4",
}
POLL_EVERY = 2000


class ImportProducer:
    """Produces with ``producer_config`` (murmur2: part of the contract).

    Records sent with ``tracked=True`` report their key in :meth:`take_delivered` once
    the broker acknowledged them: the catalogue importer only remembers a product's
    fingerprint after its upsert really landed.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **{**BULK_CONFIG, **overrides}))
        self.sent = 0
        self.failed = 0
        self.first_error = ""
        self._delivered: list[bytes] = []

    def _on_untracked(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._fail(err)

    def _on_tracked(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._fail(err)
        else:
            key = msg.key()
            if isinstance(key, bytes):
                self._delivered.append(key)

    def _fail(self, err: KafkaError) -> None:
        self.failed += 1
        if not self.first_error:
            self.first_error = str(err)

    def _produce(self, topic: str, key: bytes, value: bytes, callback: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, -1, callback)  # -1: the partitioner
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.05)

    def send(self, topic: str, key: bytes, value: bytes, tracked: bool = False) -> None:
        self._produce(topic, key, value, self._on_tracked if tracked else self._on_untracked)
        self.sent += 1
        if self.sent % POLL_EVERY == 0:
            self._producer.poll(0)

    def send_many(self, topic: str, records: list[tuple[bytes, bytes]], tracked: bool) -> None:
        """``send`` for (key, value) pairs, a batch of offers at a time."""
        callback = self._on_tracked if tracked else self._on_untracked
        for key, value in records:
            self._produce(topic, key, value, callback)
        self.sent += len(records)
        self._producer.poll(0)

    def take_delivered(self) -> list[bytes]:
        self._producer.poll(0)
        keys, self._delivered = self._delivered, []
        return keys

    def flush(self, timeout_s: float = 120.0) -> None:
        """Wait for every acknowledgement; what is still queued at the timeout fails."""
        left = self._producer.flush(timeout_s)
        if left:
            self.failed += left
            self.first_error = self.first_error or f"{left} still queued after {timeout_s}s"
