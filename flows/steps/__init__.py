"""The step types of a flow, registered in one place.

A step is written as a one-key mapping, ``{send: {...}}``, ``{wait: P1D}``, or the
bare word ``exit``. Adding a step type means a module with its model (and its
execution, in ``flows.engine``) and one line in ``STEP_TYPES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Tag

from nudge.flows.steps.action import ActionStep
from nudge.flows.steps.branch import IfSpec, IfStep
from nudge.flows.steps.exit import ExitStep
from nudge.flows.steps.send import SendStep
from nudge.flows.steps.split import SplitSpec, SplitStep
from nudge.flows.steps.wait import WaitStep
from nudge.flows.steps.wait_for import WaitForStep

STEP_TYPES: dict[str, type[BaseModel]] = {
    "send": SendStep,
    "wait": WaitStep,
    "wait_for": WaitForStep,
    "if": IfStep,
    "split": SplitStep,
    "action": ActionStep,
    "exit": ExitStep,
}
_TAG_OF = {model: tag for tag, model in STEP_TYPES.items()}


def step_type(value: Any) -> str | None:
    """The type a step is written as: its one key, or ``exit``; None if it is neither."""
    if value == "exit":
        return "exit"
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else None
    return _TAG_OF.get(type(value))


if TYPE_CHECKING:
    Step = SendStep | WaitStep | WaitForStep | IfStep | SplitStep | ActionStep | ExitStep
else:
    Step = Annotated[
        Union[tuple(Annotated[model, Tag(tag)] for tag, model in STEP_TYPES.items())],  # noqa: UP007
        Discriminator(
            step_type,
            custom_error_type="step_type",
            custom_error_message=(
                "a step is one of " + ", ".join(STEP_TYPES) + ", written as {type: ...}"
            ),
        ),
    ]

for _nested in (IfSpec, SplitSpec):
    _nested.model_rebuild(_types_namespace={"Step": Step})

__all__ = ["STEP_TYPES", "Step", "step_type"]
