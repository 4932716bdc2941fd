"""``{date: {attribute: birthday}}``: yearly on a month-day date of the profile
(``attributes.birthday``: ``1990-05-17``, ``05-17`` or ``--05-17``), shifted by
``offset``, at ``at`` in the customer's time zone (UTC when unknown).

Like inactivity, it needs no scan of the customer base: the customer's activity (a
click, an order, a profile update) arms the run for the next occurrence, due then; a
changed date re-arms it. Only customers active since the flow was enabled are reached.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, WithJsonSchema

from nudge.flows.fields import ClockTime, Strict, _duration_ms
from nudge.flows.starts import Start
from nudge.models.state import CustomerState

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet

_MONTH_DAY = re.compile(r"^(?:\d{4}-|--)?(\d{2})-(\d{2})$")


def _signed_duration_ms(value: Any) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -_duration_ms(value.strip()[1:])
    return _duration_ms(value)


#: A duration that may be negative: ``-P3D`` is three days before the date.
Offset = Annotated[
    int,
    BeforeValidator(_signed_duration_ms),
    WithJsonSchema(
        {
            "type": ["string", "number"],
            "description": "ISO 8601 duration, '-P3D' for three days before",
        }
    ),
]


class DateSpec(Strict):
    attribute: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    offset: Offset = 0
    at: ClockTime = "10:00"


class DateTrigger(Strict):
    date: DateSpec


def next_occurrence(value: Any, spec: DateSpec, timezone: str | None, after_ms: int) -> int | None:
    """The first moment after ``after_ms`` of the yearly date ``value`` (shifted by the
    offset, at the time of day); None when ``value`` is not a month-day date. A 29
    February falls on the 28th in other years."""
    match = _MONTH_DAY.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    month, day = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    hour, minute = (int(part) for part in spec.at.split(":"))
    year = datetime.fromtimestamp(after_ms / 1000, tz=zone).year
    for candidate_year in range(year - 1, year + 3):
        try:
            day_of = date(candidate_year, month, day)
        except ValueError:
            if (month, day) != (2, 29):
                return None  # 31 April and the like: not a date
            day_of = date(candidate_year, 2, 28)
        moment = datetime(day_of.year, day_of.month, day_of.day, hour, minute, tzinfo=zone)
        due = int((moment + timedelta(milliseconds=spec.offset)).timestamp() * 1000)
        if due > after_ms:
            return due
    return None


def starts_on_activity(
    flows: FlowSet, state: CustomerState, base_ms: int, now_ms: int
) -> list[Start]:
    """A run per date flow, due at the customer's next occurrence of the date."""
    starts = []
    for plan in flows.dates():
        trigger = plan.flow.trigger
        assert isinstance(trigger, DateTrigger)
        spec = trigger.date
        value = state.profile.attributes.get(spec.attribute)
        due = next_occurrence(value, spec, state.profile.timezone, now_ms)
        if due is not None:
            starts.append(Start(plan, base_ms, {"date": value}, due_ms=due))
    return starts


def start_for_existing(plan: FlowPlan, state: CustomerState, now_ms: int) -> Start | None:
    """``include_existing``: the customer's next occurrence of the date, if it has one."""
    trigger = plan.flow.trigger
    assert isinstance(trigger, DateTrigger)
    spec = trigger.date
    value = state.profile.attributes.get(spec.attribute)
    due = next_occurrence(value, spec, state.profile.timezone, now_ms)
    return None if due is None else Start(plan, now_ms, {"date": value}, due_ms=due)
