"""A bounded shutdown: SIGTERM stops a worker within ``NUDGE_SHUTDOWN_TIMEOUT_S``.

A worker stops politely first: it finishes the batch in hand and commits it. If that
takes longer than the timeout (a broker gone away, a stuck send), the process exits
anyway. Nothing is lost by it: offsets are committed only for applied records, so
what was in flight is consumed again by the next worker.
"""

from __future__ import annotations

import os
import sys
import threading

FORCED_EXIT_CODE = 3


class ShutdownDeadline:
    """Arms once; ``timeout_s`` later, if the process still runs, it exits."""

    def __init__(self, timeout_s: float, what: str) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        sys.stderr.write(
            f"{self.what} did not stop within {self.timeout_s:g} s "
            "(NUDGE_SHUTDOWN_TIMEOUT_S): exiting; uncommitted records will be consumed again\n"
        )
        sys.stderr.flush()
        os._exit(FORCED_EXIT_CODE)
