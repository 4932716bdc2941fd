"""Routing unusable input records to the dead-letter topic, bytes untouched."""

from __future__ import annotations

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

    def send(self, message: Any, error: InvalidMessage) -> None:
        """Queue the record for the dead-letter topic (non-blocking, ordered with the rest)."""
        letter = DeadLetter.of(message, error, self.clock.now_ms())
        self.metrics.dead_letters.labels(message.topic, error.reason).inc()
        log.info("dead-letter %s/%s@%s: %s", letter.topic, letter.partition, letter.offset, error)
        self.topic.send_soon(
            key=letter.key,
            value=letter.value if letter.value is not None else b"",
            headers=letter.headers(),
        )
