"""``wait_for``: wait for a matching event of the customer, or the timeout."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from nudge.flows.fields import Condition, Duration, EventName, Strict
from nudge.flows.step_context import StepContext, StepResult


class WaitForSpec(Strict):
    event: EventName
    where: Condition | None = None
    timeout: Duration
    #: what the matching event does: end the run, or go on with the next step
    on_event: Literal["exit", "continue"] = "continue"


class WaitForStep(Strict):
    wait_for: WaitForSpec


def execute(step: WaitForStep, ctx: StepContext) -> StepResult:
    """Reached: wait for the event until the timeout. Due again: it timed out, go on.
    A matching event is handled where events are (``flows.engine.on_event``)."""
    run = ctx.run
    if run.waiting_for is None:
        spec = step.wait_for
        return ctx.block(replace(run, waiting_for=spec.event, due_ms=run.due_ms + spec.timeout))
    return ctx.proceed()
