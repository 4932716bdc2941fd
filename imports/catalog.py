"""``nudge import catalog``: a feed in, upserts of what changed out, plus change events.

Order of work, so that a bad source changes nothing: fetch the whole document, check
its root (and refuse a DTD that declares entities), reach Redis; only then stream the
offers. A feed that turns out broken half-way has its earlier upserts produced and
their fingerprints recorded (they are consistent with each other), and fails loudly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from imports.errors import FeedError
from imports.feeds.google import ATOM_ROOT, RSS_ROOT, parse_google
from imports.feeds.records import Offer, Rejected
from imports.feeds.yml import ROOT as YML_ROOT
from imports.feeds.yml import parse_yml
from imports.fingerprints import FingerprintStore, Known, fingerprint, source_key
from imports.producer import ImportProducer
from imports.progress import CountingReader, Progress
from imports.rejects import RejectLog
from imports.source import is_url, local_copy
from nudge.settings import Settings

BATCH = 5000
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
    from imports.xmlsafe import root_tag

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
        store = FingerprintStore.connect(
            settings.redis_url or "redis://127.0.0.1:6379/0",
            source_key(settings.redis_namespace, identity),
        )
        summary = CatalogSummary(format=kind, rejects_path=rejects)
        try:
            _ensure_topics(settings)
            _run(settings, path, kind, store, summary, rejects, progress)
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
    path: Path,
    kind: str,
    store: FingerprintStore,
    summary: CatalogSummary,
    rejects_path: Path,
    progress: bool,
) -> None:
    producer = ImportProducer(settings.kafka_bootstrap)
    changes = _Changes(settings, producer, int(time.time() * 1000))
    catalog_topic = settings.topic("catalog")
    bar = Progress(path.stat().st_size, f"catalog ({kind})", progress)
    try:
        with path.open("rb", buffering=0) as raw, RejectLog(rejects_path) as rejects:
            stream = CountingReader(raw)
            items = parse_yml(stream) if kind == "yml" else parse_google(stream, kind == "atom")
            for batch in _batches(items, summary, rejects):
                previous = store.get_many([o.record["product_id"] for o in batch])
                for offer, old in zip(batch, previous, strict=True):
                    payload = orjson.dumps(offer.record)
                    new = fingerprint(offer.record, payload)
                    if old is not None and old.digest == new.digest:
                        summary.unchanged += 1
                        continue
                    summary.changed += 1
                    key = offer.record["product_id"].encode()
                    store.stage(key, new)
                    producer.send(catalog_topic, key, payload, tracked=True)
                    if old is not None:
                        changes.compare(offer.record, old, new, summary)
                store.confirm(producer.take_delivered())
                bar.update(stream.count, summary.read)
        summary.rejected = rejects.count
    finally:
        producer.flush()
        store.confirm(producer.take_delivered())
        store.write()
        summary.failed, summary.first_error = producer.failed, producer.first_error
        bar.close()


def _batches(
    items: Iterator[Offer | Rejected], summary: CatalogSummary, rejects: RejectLog
) -> Iterator[list[Offer]]:
    batch: list[Offer] = []
    for item in items:
        summary.read += 1
        if isinstance(item, Rejected):
            rejects.write(item.line, item.reason, product_id=item.product_id)
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Changes:
    """Price drops and returns to stock, for the triggers that will act on them."""

    def __init__(self, settings: Settings, producer: ImportProducer, ts: int) -> None:
        self.topic = settings.topic("catalog-changes")
        self.producer = producer
        self.ts = ts

    def compare(
        self, record: dict[str, Any], old: Known, new: Known, summary: CatalogSummary
    ) -> None:
        pid = record["product_id"]
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
