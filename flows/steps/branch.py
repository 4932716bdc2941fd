"""``if``: one branch of steps or the other, by a condition at the moment it is reached."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import Field

from nudge.flows.fields import Condition, Strict
from nudge.flows.step_context import StepContext, StepResult

if TYPE_CHECKING:
    from nudge.flows.steps import Step


class IfSpec(Strict):
    condition: Condition
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class IfStep(Strict):
    if_: IfSpec = Field(alias="if")


def execute(step: IfStep, ctx: StepContext) -> StepResult:
    from nudge.flows.conditions import ConditionFailed, holds, variables

    try:
        chosen = holds(step.if_.condition, variables(ctx.state, ctx.run))
    except ConditionFailed as exc:
        skipped = ctx.proceed()
        return replace(skipped, notes=(ctx.note("condition_failed", str(exc)),))
    return ctx.enter((*ctx.run.at, "then" if chosen else "else", 0))
