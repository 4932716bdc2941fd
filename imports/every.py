"""``--every``: "1h", "30m", "90s", "2d", plain seconds, or ISO 8601 ("PT1H")."""

from __future__ import annotations

import re

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
