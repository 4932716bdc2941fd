"""``{date: {attribute: birthday}}``: yearly on a month-day date of the profile
(``attributes.birthday``), at a time of day in the customer's time zone."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from flows.fields import ClockTime, Strict, _duration_ms


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
