"""The shared loop of the customer and order imports: read, map, check, produce.

Every record is run through the codec's own decoder before it is produced, so the
importer can never put on a topic what a stream worker would dead-letter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nudge.codec import DECODERS
from nudge.errors import InvalidMessage
from nudge.imports.errors import InputFileError, RowError
from nudge.imports.producer import ImportProducer
from nudge.imports.progress import CountingReader, Progress
from nudge.imports.rejects import RejectLog
from nudge.imports.tabular import BadRow, read_rows
from nudge.settings import Settings

# A row's data -> the record to produce; RowError rejects the row.
Transform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class RowSummary:
    read: int = 0
    produced: int = 0
    rejected: int = 0
    failed: int = 0
    first_error: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"read {self.read}, produced {self.produced}, rejected {self.rejected}, "
            f"failed {self.failed} ({self.seconds:.1f}s)"
        )


def import_rows(
    settings: Settings,
    path: Path,
    fmt: str,
    topic: str,
    transform: Transform,
    *,
    rejects: Path,
    progress: bool = True,
) -> RowSummary:
    """Produce ``transform(row)`` to ``topic`` (keyed by customer id) for every row."""
    if not path.is_file():
        raise InputFileError(f"no such file: {path}")
    from nudge.topics import create_topics

    started = time.monotonic()
    decode = DECODERS[topic]
    limit = settings.max_payload_bytes
    create_topics(settings)  # missing topics would get the broker's partition count
    producer = ImportProducer(settings.kafka_bootstrap)
    name = settings.topic(topic)
    summary = RowSummary()
    bar = Progress(path.stat().st_size, topic, progress)
    try:
        with path.open("rb", buffering=0) as raw, RejectLog(rejects) as log:
            stream = CountingReader(raw)
            for row in read_rows(stream, fmt):
                summary.read += 1
                if isinstance(row, BadRow):
                    log.write(row.line, row.reason)
                    continue
                try:
                    record = transform(row.data)
                    value = orjson.dumps(record)
                    decode(value, None, limit)
                except RowError as exc:
                    log.write(row.line, str(exc))
                    continue
                except InvalidMessage as exc:
                    log.write(row.line, f"{exc.reason}: {exc.detail}")
                    continue
                producer.send(name, record["customer_id"].encode(), value)
                summary.produced += 1
                if summary.read % 5000 == 0:
                    bar.update(stream.count, summary.read)
            bar.update(stream.count, summary.read)
            summary.rejected = log.count
    finally:
        producer.flush()
        summary.failed, summary.first_error = producer.failed, producer.first_error
        bar.close()
    summary.seconds = time.monotonic() - started
    return summary
