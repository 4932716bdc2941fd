"""The feed reader process: ``python -m nudge.imports.feed_reader PATH KIND``.

Parsing XML and building records is most of an import's CPU. Done here, it runs on
another core while the importer spends its own on Redis and the broker. Offers go to
stdout in batches (see ``frames``): serialised records, with the state their
fingerprints need; a broken feed ends the stream with a FAILED frame carrying the
reason. The reader has no side effects, so stopping it at any point changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from nudge.imports.errors import FeedError
from nudge.imports.feeds.google import parse_google
from nudge.imports.feeds.records import Offer, Rejected
from nudge.imports.feeds.yml import parse_yml
from nudge.imports.fingerprints import state_of
from nudge.imports.frames import BATCH, DONE, FAILED, Batch, write_frame
from nudge.imports.progress import CountingReader

BATCH_OFFERS = 5000
# Descriptions can be long: a byte bound keeps a batch (and the process) small whatever
# the feed, since the parent holds one batch while this process fills the next.
BATCH_BYTES = 4 * 1024 * 1024


def parse(stream: CountingReader, kind: str) -> Iterator[Offer | Rejected]:
    return parse_yml(stream) if kind == "yml" else parse_google(stream, kind == "atom")


def batches(items: Iterator[Offer | Rejected], stream: CountingReader) -> Iterator[Batch]:
    """Offers serialised, bounded by count and by bytes. A FeedError comes after the
    batch of what was read before it."""
    batch = Batch()
    dumps = orjson.dumps
    try:
        for item in items:
            if isinstance(item, Offer):
                record = item.record
                payload = dumps(record)
                key = record["product_id"].encode()
                batch.add(key, payload, state_of(record))
            else:
                batch.rejects.append((item.line, item.reason, item.product_id))
            if len(batch) >= BATCH_OFFERS or len(batch.blob) >= BATCH_BYTES:
                batch.bytes_read = stream.count
                yield batch
                batch = Batch()
    except FeedError:
        if len(batch):
            batch.bytes_read = stream.count
            yield batch
        raise
    batch.bytes_read = stream.count
    yield batch


def run(path: Path, kind: str, out: IO[bytes]) -> None:
    with path.open("rb", buffering=0) as raw:
        stream = CountingReader(raw)
        try:
            for batch in batches(parse(stream, kind), stream):
                write_frame(out, BATCH, batch.dump())
        except FeedError as exc:
            # What came before the break was sent: the parent imports it, then fails.
            write_frame(out, FAILED, str(exc).encode())
            return
    write_frame(out, DONE, b"")


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group; the parent stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Frames own stdout; a stray print from anywhere goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        run(Path(argv[0]), argv[1], out)
        out.close()
    except BrokenPipeError:
        return 1  # the importer is gone; nobody is left to tell
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
