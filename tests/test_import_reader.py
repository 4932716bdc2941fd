"""The feed reader process on its own (no broker): what it sends, and how it fails.

Offers must arrive as the in-process parsers build them, rejects with their line
numbers; a broken feed, a reader that crashes or is killed, and a parent that goes
away must each end cleanly, with a clear error and no process left behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from nudge.imports import reader_process
from nudge.imports.catalog import detect_format
from nudge.imports.errors import FeedError, ImportFailure
from nudge.imports.feed_reader import BATCH_OFFERS
from nudge.imports.feeds.google import parse_google
from nudge.imports.feeds.records import Offer, Rejected
from nudge.imports.feeds.yml import parse_yml
from nudge.imports.fingerprints import Known, encoded_fingerprint, state_of
from nudge.imports.frames import BATCH, Batch, read_frame, write_frame
from nudge.imports.reader_process import FeedReaderProcess

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


def write_feed(path: Path, offers: int, tail: str = "</offers></shop></yml_catalog>\n") -> Path:
    with path.open("w") as out:
        out.write('<?xml version="1.0"?>\n<yml_catalog><shop><offers>\n')
        for i in range(offers):
            out.write(
                f'<offer id="p{i}"><url>https://s.example/{i}</url><price>{i}.5</price>'
                f"<currencyId>EUR</currencyId><name>Item {i}</name></offer>\n"
            )
        out.write(tail)
    return path


def gone(pid: int) -> bool:
    """True once ``pid`` has exited and been reaped (or was never ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:  # a zombie still answers kill(0)
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def in_process(path: Path) -> list[Offer | Rejected]:
    kind = detect_format(path, "auto")
    with path.open("rb") as fh:
        return list(parse_yml(fh) if kind == "yml" else parse_google(fh, kind == "atom"))


@pytest.mark.parametrize("name", ["shop.yml.xml", "merchant.rss.xml", "merchant.atom.xml"])
def test_reader_sends_what_the_parsers_build(name: str) -> None:
    path = FIXTURES / name
    expected = in_process(path)
    keys, payloads, states, rejects = [], [], [], []
    with FeedReaderProcess(path, detect_format(path, "auto")) as reader:
        for batch in reader:
            keys += batch.keys
            payloads += list(batch.payloads())
            states += batch.states
            rejects += batch.rejects
            assert batch.bytes_read > 0
    offers = [i.record for i in expected if isinstance(i, Offer)]
    assert [orjson.loads(p) for p in payloads] == offers
    assert keys == [o["product_id"].encode() for o in offers]
    assert states == [state_of(o) for o in offers]
    assert rejects == [
        (r.line, r.reason, r.product_id) for r in expected if isinstance(r, Rejected)
    ]
    assert rejects, "every fixture has rejects, with line numbers"
    assert all(isinstance(line, int) and line > 1 for line, _, _ in rejects)


def test_encoded_fingerprint_is_the_stored_format() -> None:
    record = {"product_id": "a", "price": 12.3, "available": False, "currency": "EUR"}
    payload = orjson.dumps(record)
    encoded = encoded_fingerprint(payload, state_of(record))
    # the layout earlier releases stored: fingerprints already in Redis stay valid
    digest = hashlib.blake2b(payload, digest_size=8).hexdigest()
    assert encoded == f"{digest} 12.3 0 EUR".encode()
    assert Known.decode(encoded) == Known(digest, 12.3, False, "EUR")
    changed = orjson.dumps({**record, "title": "b"})
    assert encoded_fingerprint(changed, state_of(record)) != encoded


def test_batches_are_bounded_and_keep_count(tmp_path: Path) -> None:
    path = write_feed(tmp_path / "feed.xml", 2 * BATCH_OFFERS + 7)
    sizes = []
    with FeedReaderProcess(path, "yml") as reader:
        sizes = [len(batch) for batch in reader]
    assert sum(sizes) == 2 * BATCH_OFFERS + 7
    assert max(sizes) <= BATCH_OFFERS
    assert len(sizes) == 3


def test_frames_round_trip_and_torn_stream() -> None:
    batch = Batch(bytes_read=42)
    for i in range(3):
        batch.add(f"k{i}".encode(), b"{}" * (i + 1), b"fp")
    batch.rejects.append((7, "missing url", None))
    out = io.BytesIO()
    write_frame(out, BATCH, batch.dump())
    data = out.getvalue()
    kind, payload = read_frame(io.BytesIO(data)) or (b"", b"")
    back = Batch.load(payload)
    assert kind == BATCH
    assert list(back.payloads()) == [b"{}", b"{}{}", b"{}{}{}"]
    assert (back.keys, back.rejects, back.bytes_read) == (
        batch.keys,
        [(7, "missing url", None)],
        42,
    )
    assert read_frame(io.BytesIO(data[:-1])) is None, "a writer that died mid-frame"
    assert read_frame(io.BytesIO(b"")) is None


def test_broken_feed_sends_what_came_before_then_fails(tmp_path: Path) -> None:
    path = write_feed(tmp_path / "broken.xml", 3, tail="<offer id='x'><url>oops</offer>")
    received: list[bytes] = []
    with pytest.raises(FeedError, match="broken XML"), FeedReaderProcess(path, "yml") as reader:
        for batch in reader:
            received += batch.keys
    assert received == [b"p0", b"p1", b"p2"]


def test_reader_killed_mid_stream_is_an_error(tmp_path: Path) -> None:
    # Far more than the pipe holds: the reader is still busy after the first batch.
    path = write_feed(tmp_path / "feed.xml", 8 * BATCH_OFFERS)
    with FeedReaderProcess(path, "yml") as reader:
        batches = iter(reader)
        next(batches)
        assert reader.pid is not None
        os.kill(reader.pid, signal.SIGKILL)
        with pytest.raises(ImportFailure, match="killed by signal 9"):
            for _ in batches:
                pass


def test_reader_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_process, "READER_MODULE", "nudge.imports.no_such_reader")
    feed = write_feed(tmp_path / "feed.xml", 1)
    match = r"exited with code 1: .*No module named"
    with pytest.raises(ImportFailure, match=match), FeedReaderProcess(feed, "yml") as reader:
        list(reader)


def test_leaving_early_stops_the_reader(tmp_path: Path) -> None:
    path = write_feed(tmp_path / "feed.xml", 8 * BATCH_OFFERS)
    with FeedReaderProcess(path, "yml") as reader:
        next(iter(reader))
        pid = reader.pid
    assert pid is not None and gone(pid)


PARENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from nudge.imports.reader_process import FeedReaderProcess
    try:
        with FeedReaderProcess(Path(sys.argv[1]), "yml") as reader:
            next(iter(reader))
            pid = reader.pid
            print(pid, flush=True)
            if sys.argv[2] == "die":
                os._exit(9)  # no clean-up at all, as after SIGKILL
            time.sleep(60)
    except KeyboardInterrupt:
        try:  # still before this process exits (which would end the reader anyway)
            os.kill(pid, 0)
            print("reader still running", flush=True)
        except ProcessLookupError:
            print("reader stopped", flush=True)
        sys.exit(130)
    """
)


def start_parent(feed: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(feed), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def test_reader_exits_when_the_importer_dies(tmp_path: Path) -> None:
    parent, pid = start_parent(write_feed(tmp_path / "feed.xml", 8 * BATCH_OFFERS), "die")
    parent.wait(timeout=10)
    # The reader is not our child: it was re-parented; it must end on its own (EPIPE).
    assert wait_gone(pid), "the reader outlived its importer"


def test_ctrl_c_leaves_no_reader_behind(tmp_path: Path) -> None:
    parent, pid = start_parent(write_feed(tmp_path / "feed.xml", 8 * BATCH_OFFERS), "wait")
    os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    assert parent.stdout is not None
    assert parent.stdout.readline().strip() == "reader stopped"
    assert parent.wait(timeout=15) == 130
    assert gone(pid)
