"""``action``: change the customer's profile: add or remove a tag, set attributes."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from nudge.flows.fields import Strict
from nudge.flows.step_context import StepContext, StepResult

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Scalar = str | int | float | bool | None


class ActionSpec(Strict):
    tag: Name | None = None
    untag: Name | None = None
    set: dict[Name, Scalar] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionSpec:
        given = [n for n in ("tag", "untag", "set") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("an action is exactly one of tag, untag or set")
        return self


class ActionStep(Strict):
    action: ActionSpec


def execute(step: ActionStep, ctx: StepContext) -> StepResult:
    spec = step.action
    profile = ctx.state.profile
    if spec.tag is not None and spec.tag not in profile.tags:
        profile = replace(profile, tags=(*profile.tags, spec.tag))
    elif spec.untag is not None and spec.untag in profile.tags:
        profile = replace(profile, tags=tuple(t for t in profile.tags if t != spec.untag))
    elif spec.set is not None:
        profile = replace(profile, attributes={**profile.attributes, **spec.set})
    if profile is ctx.state.profile:
        return ctx.proceed()
    return ctx.proceed(state=ctx.state.evolve(profile=profile))
