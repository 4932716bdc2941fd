"""Whether to send now, later or never: pure functions of what is known at send time.

Nothing here touches Redis or the clock; the worker gathers the facts and passes
``now_ms``, so every rule is unit-testable at any instant, timezone and DST edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nudge.errors import ConfigError

Action = Literal["send", "suppress", "defer"]

_QUIET = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str = ""
    until_ms: int | None = None  # for "defer": when to try again


SEND = Decision("send")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in minutes after local midnight; it may wrap past midnight."""

    start_min: int
    end_min: int

    def contains(self, minute: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


def parse_quiet_hours(spec: str) -> QuietHours | None:
    """``"22-8"`` or ``"22:30-07:15"``; empty means no quiet hours."""
    if not spec.strip():
        return None
    match = _QUIET.match(spec)
    if not match:
        raise ConfigError(f"quiet_hours {spec!r}: expected 'HH-HH' or 'HH:MM-HH:MM'")
    sh, sm, eh, em = (int(g or 0) for g in match.groups())
    if sh > 23 or eh > 23 or sm > 59 or em > 59:
        raise ConfigError(f"quiet_hours {spec!r}: hours 0-23, minutes 0-59")
    start, end = sh * 60 + sm, eh * 60 + em
    return None if start == end else QuietHours(start, end)


def zone(name: str | None) -> tzinfo:
    """The customer's timezone; UTC when unknown or unparseable rather than failing."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def local_day(tz_name: str | None, now_ms: int) -> str:
    """The customer's calendar day, the unit of the frequency cap."""
    return datetime.fromtimestamp(now_ms / 1000, tz=zone(tz_name)).date().isoformat()


def next_local_day_ms(tz_name: str | None, now_ms: int) -> int:
    """The next midnight in the customer's time zone: when the cap's day starts over."""
    tz = zone(tz_name)
    today = datetime.fromtimestamp(now_ms / 1000, tz=tz).date()
    tomorrow = today + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)
    return max(int(midnight.astimezone(UTC).timestamp() * 1000), now_ms + 1)


def quiet_until(quiet: QuietHours | None, tz_name: str | None, now_ms: int) -> int | None:
    """When the quiet window containing ``now_ms`` ends (epoch ms), or None if not quiet."""
    if quiet is None:
        return None
    tz = zone(tz_name)
    local = datetime.fromtimestamp(now_ms / 1000, tz=tz)
    minute = local.hour * 60 + local.minute
    if not quiet.contains(minute):
        return None
    end_day = local.date()
    if quiet.start_min > quiet.end_min and minute >= quiet.start_min:
        end_day += timedelta(days=1)
    end_local = datetime(
        end_day.year,
        end_day.month,
        end_day.day,
        quiet.end_min // 60,
        quiet.end_min % 60,
        tzinfo=tz,
    )
    # Round-trip through UTC so a wall time that DST skips lands on a real instant.
    until = int(end_local.astimezone(UTC).timestamp() * 1000)
    return max(until, now_ms + 1)


# Higher is stricter. A value nudge does not know is taken as "not subscribed" (it
# suppresses with its own reason) but below an explicit unsubscribe.
_STRICTNESS = {"subscribed": 0, "pending": 1, "unsubscribed": 3}
_UNKNOWN_STRICTNESS = 2


def effective_consent(carried: str | None, stored: str | None) -> str | None:
    """The consent to judge by: the stricter of the command's and Redis's.

    ``carried`` is what the stream worker knew when the timer fired, ``stored`` what
    Redis holds now (the unsubscribe page writes there first). Either may lag: Redis
    behind the stream right after a sign-up, the command behind an unsubscribe that
    came while it waited. So ``unsubscribed`` from either side wins, ``pending`` beats
    ``subscribed``, and a side that knows nothing (None or empty) does not count; on a
    tie Redis's value is kept. None only when neither side knows.
    """
    known = [value for value in (stored, carried) if value]
    if not known:
        return None
    return max(known, key=lambda value: _STRICTNESS.get(value, _UNKNOWN_STRICTNESS))


def decide(
    *,
    marketing: bool,
    consent: str | None,
    hard_bounced: bool,
    sent_today: int,
    frequency_cap: int,
    quiet: QuietHours | None,
    tz_name: str | None,
    now_ms: int,
) -> Decision:
    """The rules, in order: bounces, consent, quiet hours, frequency cap.

    ``consent`` is the effective one (see ``effective_consent``).

    Transactional messages skip consent, quiet hours and the cap, but a hard bounce
    stops them too: the address does not exist. Quiet hours come before the cap so a
    deferred message does not use up today's allowance; it is checked when it is due.
    """
    if hard_bounced:
        return Decision("suppress", "hard_bounce")
    if not marketing:
        return SEND
    if consent != "subscribed":
        return Decision("suppress", f"consent_{consent}" if consent else "no_consent")
    until = quiet_until(quiet, tz_name, now_ms)
    if until is not None:
        return Decision("defer", "quiet_hours", until)
    if frequency_cap and sent_today >= frequency_cap:
        return Decision("suppress", "frequency_cap")
    return SEND
