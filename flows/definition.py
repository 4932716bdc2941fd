"""A flow as a marketer writes it on ``trigger-config``: a trigger, rules, steps.

``Flow`` is the one strict schema. ``parse_flow`` reads a definition (a flow, or an
abandonment shorthand that it expands first) and raises ``DefinitionError`` naming
every problem with its path, ``welcome.steps[2].wait_for.timeout: ...``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, ValidationError, WithJsonSchema, field_validator

from nudge.flows.errors import DefinitionError, problems_of
from nudge.flows.fields import (
    DURATION_SCHEMA,
    Condition,
    Duration,
    EventMatch,
    Strict,
    _duration_ms,
)
from nudge.flows.shorthand import expand_shorthand, is_shorthand
from nudge.flows.steps import Step
from nudge.flows.steps.send import SendStep
from nudge.flows.steps.split import SplitStep
from nudge.flows.steps.wait import ReplenishWait, WaitStep
from nudge.flows.triggers import Trigger
from nudge.flows.triggers.abandonment import AbandonmentTrigger
from nudge.flows.triggers.date import DateTrigger
from nudge.flows.triggers.event import EventTrigger
from nudge.flows.triggers.inactivity import InactivityTrigger
from nudge.flows.triggers.seller import SellerSalesTrigger

FLOW_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
REENTRY_WORDS = ("once", "always", "restart")


class Flow(Strict):
    id: str = Field(pattern=FLOW_ID)
    enabled: bool = True
    description: str | None = None
    class_: Literal["marketing", "transactional"] = Field("marketing", alias="class")
    #: a higher priority wins a slot of the frequency cap
    priority: int = Field(50, ge=0, le=100)
    trigger: Trigger
    #: ``once``; ``always``; ``restart`` (a new trigger event ends the active run and
    #: starts over: abandonment); or a duration (not again within it)
    reentry: Annotated[
        Literal["once", "always", "restart"] | int,
        WithJsonSchema(
            {"anyOf": [{"enum": list(REENTRY_WORDS)}, DURATION_SCHEMA]},
        ),
    ] = "once"
    exit_when: list[EventMatch] = Field(default_factory=list)
    #: re-checked before every send
    filter: Condition | None = None
    steps: list[Step] = Field(min_length=1)
    #: at most one marketing message of this flow per customer within the window
    #: (``NUDGE_SMART_SENDING`` when ``true``), across separate runs
    smart_sending: Annotated[
        bool | int, WithJsonSchema({"anyOf": [{"type": "boolean"}, DURATION_SCHEMA]})
    ] = True
    #: what a message that finds no slot under the frequency cap does
    on_cap: Literal["defer", "skip"] = "defer"
    #: a message this late past its due time is not sent any more
    expires_after: Duration | None = None
    #: time-based triggers also start for customers with no activity since the flow
    #: was enabled
    include_existing: bool = False

    # A duration is parsed here, to milliseconds, so that the plain ``int`` it becomes
    # is not read as seconds again.
    @field_validator("reentry", mode="before")
    @classmethod
    def _reentry_words(cls, value: Any) -> Any:
        return value if value in REENTRY_WORDS else _duration_ms(value)

    @field_validator("smart_sending", mode="before")
    @classmethod
    def _smart_sending(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else _duration_ms(value)

    @property
    def marketing(self) -> bool:
        return self.class_ == "marketing"


def parse_flow(data: Any) -> Flow:
    """One definition, validated in full; ``DefinitionError`` lists every problem."""
    name = data.get("id") if isinstance(data, dict) else None
    label = name if isinstance(name, str) and name else "<flow without id>"
    if not isinstance(data, dict):
        raise DefinitionError(label, [("", "a definition is a mapping of fields")])
    if is_shorthand(data):
        data = expand_shorthand(data, label)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(label, problems_of(exc)) from None
    problems = list(_cross_checks(flow))
    if problems:
        raise DefinitionError(label, problems)
    return flow


def flow_version(data: Any) -> str:
    """The version of a definition as written: runs are pinned to it."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def walk_steps(steps: list[Any], path: str = "steps") -> Iterator[tuple[str, Any]]:
    """Every step with its path, branches included, in order."""
    for index, step in enumerate(steps):
        here = f"{path}[{index}]"
        yield here, step
        if isinstance(step, SplitStep):
            for variant, branch in step.split.steps.items():
                yield from walk_steps(branch, f"{here}.split.steps.{variant}")
        elif hasattr(step, "if_"):
            yield from walk_steps(step.if_.then, f"{here}.if.then")
            yield from walk_steps(step.if_.else_, f"{here}.if.else")


def _cross_checks(flow: Flow) -> Iterator[tuple[str, str]]:
    """What one field cannot know alone: rules across the trigger and the steps."""
    trigger = flow.trigger
    order_flow = isinstance(trigger, EventTrigger) and trigger.event in (
        "order_placed",
        "order_status",
    )
    per_item = isinstance(trigger, EventTrigger) and trigger.per_item
    if flow.reentry == "restart" and not isinstance(trigger, AbandonmentTrigger | EventTrigger):
        yield "reentry", "'restart' needs a trigger on events"
    if flow.include_existing and not isinstance(trigger, InactivityTrigger | DateTrigger):
        yield "include_existing", "applies to the inactivity and date triggers"
    seller_flow = isinstance(trigger, SellerSalesTrigger)
    if seller_flow and flow.marketing:
        yield "class", "a seller_sales flow writes to sellers: set class: transactional"
    sends = 0
    for path, step in walk_steps(flow.steps):
        if seller_flow and not isinstance(step, SendStep):
            yield path, "a seller_sales flow sends at once: only send steps"
        if isinstance(step, SendStep):
            sends += 1
            to_seller = step.send.to == "seller"
            if to_seller and not (order_flow or seller_flow):
                yield f"{path}.send.to", "'seller' needs a flow triggered by an order event"
            elif to_seller and flow.marketing and not seller_flow:
                yield (
                    f"{path}.send.to",
                    "messages to sellers are transactional: set class: transactional",
                )
            elif seller_flow and not to_seller:
                yield f"{path}.send.to", "a seller_sales flow writes to the seller: set to: seller"
        elif isinstance(step, WaitStep) and isinstance(step.wait, ReplenishWait) and not per_item:
            yield (
                f"{path}.wait.replenish",
                ("a replenishment wait needs the trigger {event: order_placed, per_item: true}"),
            )
    if sends == 0:
        yield "steps", "the flow sends nothing: add a send step"
