"""The contract of a step: ``execute(step, ctx) -> StepResult``.

A step reads the customer's state and its run from ``ctx`` and says what happens
next: go on (``proceed``), take a branch (``enter``), wait (``block``) or end the
run (``end``), with the state it changed, the commands it sends and the notes it
leaves (a run ended for a reason worth counting: no consent, a filter, control).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nudge.models.commands import SendCommand
from nudge.models.state import CustomerState, Run, StepPath

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet


@dataclass(frozen=True, slots=True)
class Note:
    """Why a run did not send, or ended, for metrics and the delivery-events topic."""

    flow_id: str
    customer_id: str
    episode: int
    reason: str
    variant: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StepResult:
    state: CustomerState
    #: the run after the step; None when it ended
    run: Run | None
    #: the run waits (``run.due_ms``, or an event) before its next step
    blocked: bool = False
    commands: tuple[SendCommand, ...] = ()
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class StepContext:
    state: CustomerState
    run: Run
    plan: FlowPlan
    flows: FlowSet
    now_ms: int
    #: False while an event is applied: sends wait for the timer pass that follows
    sending: bool = True
    extra_notes: tuple[Note, ...] = field(default=())

    def proceed(
        self,
        *,
        state: CustomerState | None = None,
        commands: tuple[SendCommand, ...] = (),
        run: Run | None = None,
    ) -> StepResult:
        """On to the next step, at once; the run ends after its last step."""
        current = run or self.run
        following = self.plan.next_path(current.at)
        after = None if following is None else replace(current, at=following, waiting_for=None)
        return StepResult(state or self.state, after, commands=commands)

    def enter(self, path: StepPath, *, run: Run | None = None) -> StepResult:
        """Into a branch whose first step is ``path``; past the step if it is empty."""
        current = run or self.run
        if self.plan.step_at(path) is None:
            return self.proceed(run=current)
        return StepResult(self.state, replace(current, at=path))

    def block(self, run: Run, *, state: CustomerState | None = None) -> StepResult:
        return StepResult(state or self.state, run, blocked=True)

    def end(
        self, reason: str | None = None, *, state: CustomerState | None = None, detail: str = ""
    ) -> StepResult:
        notes: tuple[Note, ...] = ()
        if reason is not None:
            notes = (self.note(reason, detail),)
        return StepResult(state or self.state, None, notes=notes)

    def note(self, reason: str, detail: str = "") -> Note:
        run = self.run
        return Note(run.flow_id, self.state.customer_id, run.episode, reason, run.variant, detail)
