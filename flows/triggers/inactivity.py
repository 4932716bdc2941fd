"""``{inactivity: {for: P30D}}``: no storefront activity and no order for that long.

The customer's activity (a click, an order) arms a run due ``for`` later, if none is
armed. When it comes due, the customer's last activity decides: back in between, the
run waits again, ``for`` from that activity (``hold``); away all along, it goes on to
the flow's steps. So an event costs no state change, only customers active since the
flow was enabled are ever reached, and nothing scans the whole customer base. A
customer who comes back after the win-back mail arms a new wait.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import Field

from nudge.flows.fields import Duration, Strict
from nudge.flows.starts import Start
from nudge.models.state import CustomerState, Run

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet


class InactivitySpec(Strict):
    for_: Duration = Field(alias="for")


class InactivityTrigger(Strict):
    inactivity: InactivitySpec


#: In an inactivity run's payload: how long the customer must stay away, in ms.
INACTIVE_FOR = "inactive_for"


def starts_on_activity(flows: FlowSet, state: CustomerState, base_ms: int) -> list[Start]:
    """A wait for every inactivity flow that has no run armed for the customer."""
    starts = []
    armed = {r.flow_id for r in state.runs if INACTIVE_FOR in r.payload}
    for plan in flows.inactivity():
        if plan.id in armed:
            continue
        trigger = plan.flow.trigger
        assert isinstance(trigger, InactivityTrigger)
        away = trigger.inactivity.for_
        starts.append(Start(plan, base_ms, {INACTIVE_FOR: away}, due_ms=base_ms + away))
    return starts


def start_for_existing(plan: FlowPlan, state: CustomerState, now_ms: int) -> Start:
    """``include_existing``: the wait as if armed at the customer's last activity (or
    their creation); one away longer than ``for`` already is due at once."""
    trigger = plan.flow.trigger
    assert isinstance(trigger, InactivityTrigger)
    away = trigger.inactivity.for_
    since = state.last_activity_ms or state.created_ms or now_ms
    return Start(plan, since, {INACTIVE_FOR: away}, due_ms=max(since + away, now_ms))


def hold(run: Run, state: CustomerState, now_ms: int) -> Run | None:
    """A due inactivity wait whose customer came back since: waiting again, ``for``
    from the last activity. None: the customer stayed away, the run goes on."""
    away = run.payload.get(INACTIVE_FOR)
    if run.at != (0,) or not isinstance(away, int):
        return None
    resume = state.last_activity_ms + away
    return replace(run, due_ms=resume) if resume > now_ms else None
