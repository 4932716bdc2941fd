"""Length-prefixed frames between the feed reader process and the importer.

A frame is a kind byte, a 4-byte little-endian length and that many bytes. Batches are
``marshal``-ed: both ends are the same interpreter (the reader is started with
``sys.executable``) and the bytes never leave this pair of processes, so the fastest
serialiser of plain lists and bytes is safe to use here.
"""

from __future__ import annotations

import marshal
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

BATCH = b"B"
FAILED = b"F"  # the feed is broken: the payload is the FeedError message
DONE = b"D"
_HEADER = struct.Struct("<cI")


Reject = tuple[int | None, str, str | None]  # (line, reason, product id)


@dataclass(slots=True)
class Batch:
    """Offers as the importer needs them: the records as produced, with their keys
    (product ids) and ``state_of`` each (for their fingerprints), and the rejects met
    on the way. Records travel end to end in ``blob``; ``ends[i]`` is where the i-th
    ends."""

    bytes_read: int = 0
    keys: list[bytes] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    # A bytearray while the reader fills it, bytes once received.
    blob: bytes | bytearray = field(default_factory=bytearray)
    ends: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def add(self, key: bytes, payload: bytes, state: bytes) -> None:
        # Copied into the blob at once: orjson over-allocates each result (4 KB for a
        # 400-byte record), so holding thousands of them costs ten times their size.
        self.keys.append(key)
        self.states.append(state)
        self.blob += payload
        self.ends.append(len(self.blob))

    def payloads(self) -> Iterator[bytes]:
        blob, start = bytes(self.blob), 0
        for end in self.ends:
            yield blob[start:end]
            start = end

    def __len__(self) -> int:
        return len(self.keys) + len(self.rejects)

    def dump(self) -> bytes:
        fields = (self.bytes_read, self.keys, self.states, self.blob, self.ends)
        return marshal.dumps((*fields, self.rejects))

    @classmethod
    def load(cls, data: bytes) -> Batch:
        return cls(*marshal.loads(data))


def write_frame(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    out.write(payload)
    out.flush()


def read_frame(src: IO[bytes]) -> tuple[bytes, bytes] | None:
    """The next (kind, payload); None at a clean or torn end of stream (the writer died)."""
    header = src.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    payload = src.read(size)
    if len(payload) < size:
        return None
    return kind, payload
