"""Value types shared by flow definitions: durations, templates, conditions, times.

Each is an ``Annotated`` type: it validates what a marketer wrote, stores what the
engine needs (a duration in milliseconds, a checked source string), and describes
itself in the published JSON Schema.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from jinja2 import TemplateSyntaxError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError
from nudge.models.message import AUTO_CHANNEL, CHANNELS
from nudge.templating import make_environment


class Strict(BaseModel):
    """Every definition part: unknown fields are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration_ms(value: Any) -> int:
    try:
        return parse_duration_ms(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^P(?!$)(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
         r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$"},
        {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
        {"type": "number", "minimum": 0},
    ],
    "description": "ISO 8601 duration such as PT30M or P7D, or seconds",
}  # fmt: skip

#: A duration, written as ISO 8601 (``PT30M``, ``P7D``) or seconds; held in milliseconds.
Duration = Annotated[int, BeforeValidator(_duration_ms), WithJsonSchema(DURATION_SCHEMA)]


def _template(source: str) -> str:
    try:
        make_environment().parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template line {exc.lineno}: {exc.message}") from None
    return source


#: Jinja2 template text (a subject, an html or text body), rendered in the sandbox.
Template = Annotated[str, AfterValidator(_template)]


def _condition(source: str) -> str:
    if not source.strip():
        raise ValueError("an empty condition")
    try:
        make_environment().compile_expression(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"condition does not parse: {exc.message}") from None
    return source


#: A Jinja2 expression (``customer.stats.orders_count == 0``), evaluated in the sandbox.
Condition = Annotated[
    str,
    AfterValidator(_condition),
    WithJsonSchema({"type": "string", "description": "a Jinja2 expression"}),
]

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock_time(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}")
    return value


#: A time of day in the customer's time zone, ``"10:00"``.
ClockTime = Annotated[
    str,
    AfterValidator(_clock_time),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}),
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: What a flow can react to or wait for: every storefront event type, the moment a
#: customer id is first seen, and a customer's email consent becoming ``pending`` (a
#: sign-up waiting for its double opt-in) or ``subscribed``.
EventName = Literal[
    "consent_pending",
    "consent_subscribed",
    "product_view",
    "category_view",
    "search",
    "cart_add",
    "cart_remove",
    "product_subscribe",
    "order_placed",
    "order_status",
    "customer_created",
]

if TYPE_CHECKING:
    Channel = str
    AutoChoice = str
else:  # the names listed once, in models.message
    #: Channels the delivery side can send on, and ``auto``.
    Channel = Literal[(*CHANNELS, AUTO_CHANNEL)]
    #: What ``channel: auto`` may choose from: channels that reach the customer.
    AutoChoice = Literal[tuple(c for c in CHANNELS if c != "webhook")]


class EventMatch(Strict):
    """An event of one type, optionally only those for which ``where`` holds."""

    event: EventName
    where: Condition | None = None
