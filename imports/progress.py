"""Progress over bytes read: rate and ETA come from the file size, rows ride along."""

from __future__ import annotations

import io
from typing import Any

from tqdm import tqdm


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes handed out, so progress needs no ``tell()``
    (text and csv readers forbid it while iterating, and lxml reads ahead anyway)."""

    def __init__(self, raw: io.BufferedIOBase | io.RawIOBase | Any) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n: int = self._raw.readinto(buffer) or 0
        self.count += n
        return n

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._raw.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


class Progress:
    """A tqdm bar in bytes, updated once per batch (tqdm per row would cost more than
    the import itself); shows rows read and rows/s as its postfix."""

    def __init__(self, total_bytes: int | None, label: str, enabled: bool = True) -> None:
        self._bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not enabled,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        self._done = 0

    def update(self, bytes_read: int, rows: int) -> None:
        if bytes_read > self._done:
            self._bar.update(bytes_read - self._done)
            self._done = bytes_read
        rate = self._bar.format_dict.get("rate") or 0.0
        per_byte = rows / self._done if self._done else 0.0
        self._bar.set_postfix_str(f"{rows:,} rows, {rate * per_byte:,.0f} rows/s", refresh=False)

    def close(self) -> None:
        self._bar.close()
