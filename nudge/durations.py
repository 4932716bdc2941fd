"""ISO 8601 durations ("PT1H", "P7D", "PT0.5S") and plain seconds, to milliseconds."""

from __future__ import annotations

import re

from nudge.errors import ConfigError

_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_S = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration_ms(value: object) -> int:
    """Seconds (int/float or numeric string) or an ISO 8601 duration, to whole ms."""
    if isinstance(value, bool):
        raise ConfigError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().upper()
        try:
            seconds = float(text)
        except ValueError:
            match = _ISO.match(text)
            if not match or text in ("P", "PT") or text.endswith("T"):
                raise ConfigError(
                    f"bad duration {value!r}: expected ISO 8601 like 'PT1H'"
                ) from None
            seconds = sum(float(v) * _UNIT_S[k] for k, v in match.groupdict().items() if v)
    else:
        raise ConfigError(f"bad duration {value!r}")
    if seconds < 0:
        raise ConfigError(f"bad duration {value!r}: negative")
    return round(seconds * 1000)
