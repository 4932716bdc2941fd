"""``--every``: "1h", "30m", "90s", "2d", plain seconds, or ISO 8601 ("PT1H")."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError

_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_every(text: str) -> float:
    """The interval in seconds; a zero or bad interval is a ConfigError."""
    match = _SHORT.match(text)
    ms = (
        round(float(match.group(1)) * _UNIT_MS[match.group(2).lower()])
        if match
        else parse_duration_ms(text)
    )
    if ms <= 0:
        raise ConfigError(f"bad interval {text!r}: must be positive")
    return ms / 1000


def run_every(
    interval_s: float,
    job: Callable[[], None],
    on_error: Callable[[Exception], None],
    *,
    runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``job`` every ``interval_s`` seconds, start to start, until interrupted (or
    ``runs`` times). A failed run is reported to ``on_error`` and the schedule goes on:
    one unreachable feed must not end an hourly import."""
    done = 0
    while runs is None or done < runs:
        started = clock()
        try:
            job()
        except Exception as exc:  # reported, then retried at the next interval
            on_error(exc)
        done += 1
        if runs is None or done < runs:
            sleep(max(0.0, interval_s - (clock() - started)))
