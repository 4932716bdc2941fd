"""``exit``: the run ends here. Written ``- exit``, or ``- exit: true``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from nudge.flows.fields import Strict
from nudge.flows.step_context import StepContext, StepResult


class ExitStep(Strict):
    exit: Literal[True] = True

    @model_validator(mode="before")
    @classmethod
    def _bare_word(cls, value: Any) -> Any:
        return {} if value == "exit" else value


def execute(step: ExitStep, ctx: StepContext) -> StepResult:
    return ctx.end()
