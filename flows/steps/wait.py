"""``wait``: a fixed delay, until a time of day (on some weekdays) in the customer's
time zone, or until a product is likely used up (replenishment)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Discriminator, Tag

from nudge.flows.fields import WEEKDAYS, ClockTime, Duration, Strict, Weekday
from nudge.flows.replenishment import interval_ms
from nudge.flows.step_context import StepContext, StepResult

DAY_MS = 86_400_000


class Until(Strict):
    until: ClockTime
    days: list[Weekday] | None = None


class Replenish(Strict):
    #: how long before the expected repurchase to remind
    lead: Duration = 3 * DAY_MS
    #: the interval when neither the customer's nor the product's is known
    fallback: Duration = 30 * DAY_MS


class ReplenishWait(Strict):
    replenish: Replenish


def _form(value: Any) -> str | None:
    if isinstance(value, dict):
        return "replenish" if "replenish" in value else "until"
    if isinstance(value, Until):
        return "until"
    if isinstance(value, ReplenishWait):
        return "replenish"
    return "duration"


WaitFor = Annotated[
    Annotated[Duration, Tag("duration")]
    | Annotated[Until, Tag("until")]
    | Annotated[ReplenishWait, Tag("replenish")],
    Discriminator(_form),
]


class WaitStep(Strict):
    wait: WaitFor


def execute(step: WaitStep, ctx: StepContext) -> StepResult:
    """The next step is due later: ``due_ms`` counts from when this one was due, so a
    late timer pass does not push the rest of the flow back."""
    run = ctx.run
    wait = step.wait
    if isinstance(wait, Until):
        due = next_time_of_day(run.due_ms, wait, ctx.state.profile.timezone)
    elif isinstance(wait, ReplenishWait):
        # Counted from the order (the run's start), less the lead; never in the past.
        interval = interval_ms(run.payload, wait.replenish.fallback)
        due = max(run.episode + interval - wait.replenish.lead, run.due_ms)
    else:
        due = run.due_ms + wait
    moved = ctx.proceed(run=replace(run, due_ms=due))
    return moved if moved.run is None else ctx.block(moved.run)


def next_time_of_day(after_ms: int, until: Until, timezone: str | None) -> int:
    """The first moment at or after ``after_ms`` that is ``until.until`` on one of
    ``until.days`` in the customer's time zone (UTC when unknown or invalid)."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    hour, minute = (int(part) for part in until.until.split(":"))
    start = datetime.fromtimestamp(after_ms / 1000, tz=zone)
    days = set(until.days or WEEKDAYS)
    for offset in range(8):
        day = (start + timedelta(days=offset)).date()
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if candidate >= start and WEEKDAYS[candidate.weekday()] in days:
            return int(candidate.timestamp() * 1000)
    raise AssertionError("a week always holds one of the chosen days")
