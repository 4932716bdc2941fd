"""Helpers for end-to-end tests that run real `nudge` processes against real services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from nudge.kafka import producer_config
from nudge.settings import Settings
from nudge.topics import create_topics

WAIT_S = 60.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child `nudge` process needs to see ``settings``, and only them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    return {**env, **settings.as_env()}


class NudgeProcess:
    """`python -m nudge <command>` as a child process with its log in a file."""

    def __init__(self, command: str, settings: Settings, log_path: Path) -> None:
        self.command = command
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NudgeProcess:
        create_topics(self.settings)  # the operator's job: the workers only check them
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nudge", self.command],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        """A crash: no shutdown hooks run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Storefront:
    """Produces contract-shaped records, as a shop would."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Compressed, as many storefronts produce: the workers must read lz4 batches.
        config = producer_config(settings.kafka_bootstrap, **{"linger.ms": 0})
        self.producer = Producer({**config, "compression.type": "lz4"})
        self._seq = 0
        self._last_ts = 0

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        raw_key = key.encode() if isinstance(key, str) else key
        self.producer.produce(self.settings.topic(topic), key=raw_key, value=value, headers=headers)
        assert self.producer.flush(15) == 0

    def event(self, topic: str, customer_id: str, /, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        # Stamped in the order sent, never ahead of the clock: two events of one
        # millisecond (a cart_add and the order after it) would be a tie the workers
        # can read either way.
        while (now := int(time.time() * 1000)) <= self._last_ts:
            time.sleep(0.0005)
        self._last_ts = now
        body = {
            "event_id": f"ev-{self._seq}",
            "customer_id": customer_id,
            "ts": self._last_ts,
            **fields,
        }
        self.send(topic, customer_id, orjson.dumps(body))
        return body

    def customer(self, customer_id: str, email: str, **fields: Any) -> None:
        fields.setdefault("consent", {"email": "subscribed"})
        self.event("customers", customer_id, email=email, **fields)

    def click(self, customer_id: str, type_: str, /, **fields: Any) -> dict[str, Any]:
        return self.event("clickstream", customer_id, type=type_, **fields)

    def product(self, product_id: str, title: str, price: float, **fields: Any) -> None:
        body = {
            "product_id": product_id,
            "title": title,
            "url": f"https://shop.example.com/p/{product_id}",
            "price": price,
            "currency": "EUR",
            "category_ids": fields.pop("category_ids", ["c-1"]),
            "available": True,
            **fields,
        }
        self.send("catalog", product_id, orjson.dumps(body))


def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record now on ``topic``, read without a consumer group.

    Reads until the topic goes quiet rather than up to the high watermark: Tansu
    reports the base offset of the last batch there, not the end of the log.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "reader",
            "enable.auto.commit": False,
        }
    )
    name = settings.topic(topic)
    try:
        metadata = consumer.list_topics(name, timeout=10).topics[name]
        consumer.assign([TopicPartition(name, p, 0) for p in metadata.partitions])
        records: list[Any] = []
        while batch := consumer.consume(num_messages=500, timeout=1.5):
            records.extend(m for m in batch if m.error() is None)
        return records
    finally:
        consumer.close()


def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The stream workers' committed offset per partition of ``topic`` (-1001: none)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}{settings.app_id}",
            "enable.auto.commit": False,
        }
    )
    name = settings.topic(topic)
    try:
        partitions = [TopicPartition(name, p) for p in range(settings.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def running(processes: Iterator[NudgeProcess] | list[NudgeProcess]) -> bool:
    return all(p.proc is not None and p.proc.poll() is None for p in processes)
