"""What a worker waits for right now, for its ``/health``: a Redis outage, a lost broker.

A worker that waits stays up and keeps its place; an operator reads why here.
"""

from __future__ import annotations

import time


class Waits:
    """What the worker waits for right now: dependency name -> last error."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, float]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def start(self, what: str, error: BaseException) -> None:
        since = self._waiting.get(what, ("", time.time()))[1]
        self._waiting[what] = (f"{type(error).__name__}: {error}"[:300], since)

    def stop(self, what: str) -> None:
        self._waiting.pop(what, None)

    def describe(self) -> dict[str, dict[str, object]]:
        return {
            what: {"error": error, "since_s": round(time.time() - since, 1)}
            for what, (error, since) in self._waiting.items()
        }
