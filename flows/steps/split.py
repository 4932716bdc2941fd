"""``split``: an A/B test. Each customer lands in one variant per flow, for good; the
control group gets nothing, and is recorded so results can be compared."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints, model_validator

from nudge.flows.fields import Strict
from nudge.flows.step_context import StepContext, StepResult

if TYPE_CHECKING:
    from nudge.flows.steps import Step

VariantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
#: The variant name of the held-out group.
CONTROL = "control"


class SplitSpec(Strict):
    #: relative weights of the variants
    variants: dict[VariantName, Annotated[int, Field(gt=0)]] = Field(min_length=1)
    #: percent of customers held out, who get nothing
    control: int = Field(0, ge=0, lt=100)
    steps: dict[VariantName, list[Step]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _steps_of_known_variants(self) -> SplitSpec:
        unknown = sorted(set(self.steps) - set(self.variants))
        if unknown:
            raise ValueError(f"steps for variants not in 'variants': {', '.join(unknown)}")
        if CONTROL in self.variants:
            raise ValueError(f"{CONTROL!r} is the held-out group; set 'control' instead")
        return self


class SplitStep(Strict):
    split: SplitSpec


def assign_variant(customer_id: str, flow_id: str, spec: SplitSpec) -> str:
    """Sticky: the same customer lands in the same variant of a flow, run after run."""
    digest = hashlib.sha256(f"{flow_id}\x00{customer_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000 / 100  # [0, 100)
    if bucket < spec.control:
        return CONTROL
    share = (bucket - spec.control) / (100 - spec.control)  # [0, 1) among the rest
    total = sum(spec.variants.values())
    running = 0
    for name, weight in spec.variants.items():
        running += weight
        if share < running / total:
            return name
    return next(reversed(spec.variants))


def execute(step: SplitStep, ctx: StepContext) -> StepResult:
    run = ctx.run
    variant = run.variant or assign_variant(ctx.state.customer_id, run.flow_id, step.split)
    run = replace(run, variant=variant)
    if variant == CONTROL:
        held = replace(ctx, run=run)
        return held.end("control_group")
    return ctx.enter((*run.at, variant, 0), run=run)
