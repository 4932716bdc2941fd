"""``{inactivity: {for: P30D}}``: no storefront activity and no order for that long.

Every activity of the customer (a click, an order) starts the flow's run over, due
``for`` later: the run's first step is reached only by a customer who stayed away that
long. A customer who comes back after the win-back mail starts a new wait. So only
customers active since the flow was enabled are ever reached, and nothing scans the
whole customer base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from flows.fields import Duration, Strict
from flows.starts import Start

if TYPE_CHECKING:
    from flows.plan import FlowSet


class InactivitySpec(Strict):
    for_: Duration = Field(alias="for")


class InactivityTrigger(Strict):
    inactivity: InactivitySpec


def starts_on_activity(flows: FlowSet, base_ms: int) -> list[Start]:
    """A new wait for every inactivity flow, counted from this activity."""
    starts = []
    for plan in flows.inactivity():
        trigger = plan.flow.trigger
        assert isinstance(trigger, InactivityTrigger)
        starts.append(Start(plan, base_ms, {}, due_ms=base_ms + trigger.inactivity.for_))
    return starts
