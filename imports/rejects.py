"""The reject file: one JSON line per unusable row, with its line number and reason."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlparse

import orjson


def default_rejects_path(source: str) -> Path:
    """``<source name>.rejects.jsonl`` in the current directory (also for URLs)."""
    name = Path(urlparse(source).path).name if "://" in source else Path(source).name
    return Path.cwd() / f"{name or 'feed'}.rejects.jsonl"


class RejectLog:
    """Opened lazily so that an import with no rejects (or one that fails before
    reading a row) leaves no file behind; a stale file from an earlier run of the same
    source is removed when this run had no rejects, so the file always describes the
    latest run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[bytes] | None = None

    def write(self, line: int | None, reason: str, **extra: Any) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
        self.count += 1
        self._fh.write(orjson.dumps({"line": line, "reason": reason, **extra}) + b"\n")

    def close(self, completed: bool) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif completed and self.path.exists():
            self.path.unlink()

    def __enter__(self) -> RejectLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(completed=et is None)
