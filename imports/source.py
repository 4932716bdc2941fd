"""Where a feed comes from: a local path, or an http(s) URL fetched to a temporary file.

A URL is downloaded completely before anything is parsed, so an unreachable server or
a connection cut half-way changes nothing: no record is produced from a partial feed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from nudge.imports.errors import FeedError

FETCH_TIMEOUT_S = 30.0


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@contextlib.contextmanager
def local_copy(source: str, timeout_s: float = FETCH_TIMEOUT_S) -> Iterator[Path]:
    """The source as a readable local file for the duration of the block."""
    if not is_url(source):
        if "://" in source:
            raise FeedError(f"unsupported URL scheme in {source!r}: use http(s) or a path")
        path = Path(source)
        if not path.is_file():
            raise FeedError(f"no such feed file: {source}")
        yield path
        return
    fd, name = tempfile.mkstemp(prefix="nudge-feed-", suffix=".xml")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(source, headers={"User-Agent": "nudge-import"})
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    shutil.copyfileobj(response, out, 1 << 20)
            except urllib.error.HTTPError as exc:
                raise FeedError(f"cannot fetch {source}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise FeedError(f"cannot fetch {source}: {reason}") from None
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
