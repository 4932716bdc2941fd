"""``nudge import catalog``: a feed in, upserts of what changed out, plus change events.

Order of work, so that a bad source changes nothing: fetch the whole document, check
its root (and refuse a DTD that declares entities), reach Redis; only then stream the
offers. A feed that turns out broken half-way has its earlier upserts produced and
their fingerprints recorded (they are consistent with each other), and fails loudly.

Two processes share the work: a feed reader (``feed_reader``) parses the XML and
serialises the records; this one compares fingerprints with Redis and produces. Parsing
is the larger half; the two overlap, a batch apart.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nudge.imports.errors import FeedError
from nudge.imports.feeds.google import ATOM_ROOT, RSS_ROOT
from nudge.imports.feeds.yml import ROOT as YML_ROOT
from nudge.imports.fingerprints import FingerprintStore, Known, encoded_fingerprint, source_key
from nudge.imports.frames import Batch
from nudge.imports.producer import ImportProducer
from nudge.imports.progress import Progress
from nudge.imports.reader_process import FeedReaderProcess
from nudge.imports.rejects import RejectLog
from nudge.imports.source import is_url, local_copy
from nudge.settings import Settings

FORMATS = ("auto", "yml", "google")


@dataclass
class CatalogSummary:
    read: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    price_drops: int = 0
    back_in_stock: int = 0
    failed: int = 0
    first_error: str = ""
    seconds: float = 0.0
    format: str = ""
    rejects_path: Path | None = field(default=None)

    def line(self) -> str:
        return (
            f"read {self.read}, changed {self.changed}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}, price drops {self.price_drops}, "
            f"back in stock {self.back_in_stock}, failed {self.failed} "
            f"({self.format}, {self.seconds:.1f}s)"
        )


def detect_format(path: Path, wanted: str) -> str:
    """``yml``, ``rss`` or ``atom`` from the root element; FeedError if not a feed."""
    from nudge.imports.xmlsafe import root_tag

    root = root_tag(path)
    kind = {YML_ROOT: "yml", RSS_ROOT: "rss", ATOM_ROOT: "atom"}.get(root)
    if kind is None:
        raise FeedError(
            f"not a product feed: root element <{root}> "
            "(expected <yml_catalog>, <rss> or Atom <feed>)"
        )
    if (wanted == "yml" and kind != "yml") or (wanted == "google" and kind == "yml"):
        raise FeedError(f"--format {wanted} given, but the document is {kind}")
    return kind


def import_catalog(
    settings: Settings,
    source: str,
    *,
    fmt: str = "auto",
    rejects: Path,
    progress: bool = True,
) -> CatalogSummary:
    started = time.monotonic()
    identity = source if is_url(source) else str(Path(source).resolve())
    with local_copy(source) as path:
        kind = detect_format(path, fmt)
        # Started first: the reader's start-up overlaps reaching Redis and the broker,
        # and it has no side effects should either fail.
        with FeedReaderProcess(path, kind) as reader:
            store = FingerprintStore.connect(
                settings.redis_url or "redis://127.0.0.1:6379/0",
                source_key(settings.redis_namespace, identity),
            )
            summary = CatalogSummary(format=kind, rejects_path=rejects)
            try:
                _ensure_topics(settings)
                bar = Progress(path.stat().st_size, f"catalog ({kind})", progress)
                _run(settings, reader, store, summary, rejects, bar)
            finally:
                store.close()
    summary.seconds = time.monotonic() - started
    return summary


def _ensure_topics(settings: Settings) -> None:
    # Tansu would auto-create a missing topic with a partition count of its choosing.
    from nudge.topics import create_topics

    create_topics(settings)


def _run(
    settings: Settings,
    reader: FeedReaderProcess,
    store: FingerprintStore,
    summary: CatalogSummary,
    rejects_path: Path,
    bar: Progress,
) -> None:
    producer = ImportProducer(settings.kafka_bootstrap)
    changes = _Changes(settings, producer, int(time.time() * 1000))
    catalog_topic = settings.topic("catalog")
    try:
        with RejectLog(rejects_path) as rejects:
            for batch in reader:
                for line, reason, product_id in batch.rejects:
                    rejects.write(line, reason, product_id=product_id)
                summary.read += len(batch.keys) + len(batch.rejects)
                _apply(batch, store, producer, catalog_topic, changes, summary)
                store.confirm(producer.take_delivered())
                bar.update(batch.bytes_read, summary.read)
        summary.rejected = rejects.count
    finally:
        # The reader first: a Ctrl-C or a failure stops parsing before the wait below.
        reader.stop()
        producer.flush()
        store.confirm(producer.take_delivered())
        store.write()
        summary.failed, summary.first_error = producer.failed, producer.first_error
        bar.close()


def _apply(
    batch: Batch,
    store: FingerprintStore,
    producer: ImportProducer,
    topic: str,
    changes: _Changes,
    summary: CatalogSummary,
) -> None:
    """Produces the batch's offers whose fingerprint differs from the stored one."""
    previous = store.get_many(batch.keys)
    changed: list[tuple[bytes, bytes]] = []
    known_before: list[tuple[bytes, bytes, bytes]] = []
    for key, payload, state, old in zip(
        batch.keys, batch.payloads(), batch.states, previous, strict=True
    ):
        new = encoded_fingerprint(payload, state)
        # Equal bytes: the same digest, price, availability and currency as last time.
        if old == new:
            continue
        store.stage(key, new)
        changed.append((key, payload))
        if old is not None:
            known_before.append((key, old, new))
    producer.send_many(topic, changed, tracked=True)
    # Change events after the upserts they describe, as a trigger may read the product.
    for key, old, new in known_before:
        changes.compare(key, old, new, summary)
    summary.changed += len(changed)
    summary.unchanged += len(batch.keys) - len(changed)


class _Changes:
    """Price drops and returns to stock, for the triggers that will act on them."""

    def __init__(self, settings: Settings, producer: ImportProducer, ts: int) -> None:
        self.topic = settings.topic("catalog-changes")
        self.producer = producer
        self.ts = ts

    def compare(self, key: bytes, raw_old: bytes, raw_new: bytes, summary: CatalogSummary) -> None:
        old, new = Known.decode(raw_old), Known.decode(raw_new)
        if old is None or new is None:
            return  # an unreadable stored entry: the product is simply re-sent
        pid = key.decode()
        # A price in another currency is not comparable: no drop can be claimed.
        if new.price < old.price and new.currency == old.currency:
            summary.price_drops += 1
            self._emit("price_drop", pid, old, new, old_price=old.price)
        if new.available and not old.available:
            summary.back_in_stock += 1
            self._emit("back_in_stock", pid, old, new)

    def _emit(self, kind: str, pid: str, old: Known, new: Known, **extra: Any) -> None:
        # The same change seen twice (a re-run after a crash) keeps its event id.
        seed = f"{kind}|{pid}|{old.digest}|{new.digest}".encode()
        event = {
            "event_id": hashlib.blake2b(seed, digest_size=12).hexdigest(),
            "type": kind,
            "product_id": pid,
            "ts": self.ts,
            **extra,
            "new_price": new.price,
            "currency": new.currency,
        }
        self.producer.send(self.topic, pid.encode(), orjson.dumps(event))
