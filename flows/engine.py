"""The flow engine: pure functions of a customer's state, a snapshot of the flows, and
the time. ``apply`` folds an event into the customer's runs (exits, awaited events,
starts); ``fire`` runs every due run up to its next wait, returning the commands to
send. An event's pass only runs waits (``sending=False``): every step with an effect
runs in ``fire``, so the worker's timer pass is the one place that produces commands
and notes.

Each step type executes in its own module; ``EXECUTORS`` is where they are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from nudge.flows.conditions import ConditionFailed, holds, variables
from nudge.flows.plan import FlowPlan, FlowSet
from nudge.flows.starts import Start
from nudge.flows.step_context import Note, StepContext, StepResult
from nudge.flows.steps import action, branch, exit, send, split, wait, wait_for
from nudge.flows.triggers import inactivity
from nudge.models.commands import SendCommand
from nudge.models.state import CustomerState, FlowMark, Run

EXECUTORS: dict[type, Callable[[Any, StepContext], StepResult]] = {
    send.SendStep: send.execute,
    wait.WaitStep: wait.execute,
    wait_for.WaitForStep: wait_for.execute,
    branch.IfStep: branch.execute,
    split.SplitStep: split.execute,
    action.ActionStep: action.execute,
    exit.ExitStep: exit.execute,
}
#: What an event's pass may run: only how long to wait. Every step with an effect
#: (a send, a branch, an action, a note) runs in ``fire``, the one place with outputs.
_TIMING_STEPS = (wait.WaitStep, wait_for.WaitForStep)
#: Steps one pass may run for one run: a flow is a finite tree walked forward, so
#: this bounds only a definition with absurdly many instant steps.
MAX_STEPS_PER_PASS = 500


@dataclass(frozen=True, slots=True)
class Fired:
    state: CustomerState
    commands: list[SendCommand]
    notes: list[Note]


def advance(
    state: CustomerState, run: Run, plan: FlowPlan, flows: FlowSet, now_ms: int, *, sending: bool
) -> tuple[CustomerState, Run | None, list[SendCommand], list[Note]]:
    """Run steps from ``run.at`` until one waits or the run ends."""
    commands: list[SendCommand] = []
    notes: list[Note] = []
    for _ in range(MAX_STEPS_PER_PASS):
        step = plan.step_at(run.at)
        if step is None:
            return state, None, commands, notes
        if not sending and type(step) not in _TIMING_STEPS:
            return state, run, commands, notes  # due now: the timer pass goes on from here
        result = EXECUTORS[type(step)](step, StepContext(state, run, plan, flows, now_ms, sending))
        state = result.state
        commands.extend(result.commands)
        notes.extend(result.notes)
        if result.run is None or result.blocked:
            return state, result.run, commands, notes
        run = result.run
    notes.append(Note(run.flow_id, state.customer_id, run.episode, "too_many_steps"))
    return state, None, commands, notes


def start(
    state: CustomerState, wanted: Start, flows: FlowSet, now_ms: int, *, owned: bool = False
) -> CustomerState:
    """Start a run if the flow's ``reentry`` allows it, and take it to its first wait.

    ``owned``: ``state`` was created by the caller's own call and nobody else holds it
    yet, so it is finished in place instead of copied once more (this runs per event).
    """
    plan = wanted.plan
    reentry = "restart" if wanted.due_ms is not None else plan.flow.reentry
    current = [r for r in state.runs if r.flow_id == plan.id and r.key == wanted.key]
    if wanted.due_ms is not None and any(
        r.at == (0,) and r.due_ms == wanted.due_ms for r in current
    ):
        return state  # armed for that moment already (a date flow's next occurrence)
    if reentry == "restart":
        for run in current:
            if run.episode > wanted.base_ms:
                return state  # a late, out-of-order event must not move a run back
            if run.episode == wanted.base_ms and run.payload == wanted.payload:
                return state
    elif any(r.episode == wanted.base_ms for r in current):
        return state  # the same moment again (a redelivered event)
    elif current and reentry != "always":
        return state
    # Keyed runs (one per order, say) are as many as their keys: ``reentry`` holds
    # per key while a run of that key is active; the flow-wide history is not kept
    # per key, which would grow with every order.
    mark = None if wanted.key else state.mark_of(plan.id)
    if mark is not None and mark.started_ms:
        if reentry == "once":
            return state
        if isinstance(reentry, int) and wanted.base_ms - mark.started_ms < reentry:
            return state
    due = wanted.base_ms if wanted.due_ms is None else wanted.due_ms
    others = state.runs
    if reentry == "restart" and current:
        flow_id, key = plan.id, wanted.key
        others = tuple(r for r in state.runs if r.flow_id != flow_id or r.key != key)
    if reentry != "restart" and not wanted.key:  # nobody looks at these marks
        state = state.evolve(flow_marks=started_marks(state, plan.id, wanted.base_ms))
    run_after: Run | None
    if wanted.due_ms is None and plan.first_wait is not None:
        path, delay = plan.first_wait  # what ``advance`` would do, without its overhead
        run_after = Run(plan.id, path, due + delay, wanted.base_ms, wanted.payload, plan.version,
                        wanted.key)  # fmt: skip
    else:
        run_after = Run(plan.id, (0,), due, wanted.base_ms, wanted.payload, plan.version,
                        wanted.key)  # fmt: skip
        if wanted.due_ms is None:  # an inactivity run waits as it is, until its due time
            state, run_after, _, _ = advance(state, run_after, plan, flows, now_ms, sending=False)
    runs = others if run_after is None else (*others, run_after)
    if owned:
        object.__setattr__(state, "runs", runs)
        return state
    return state.evolve(runs=runs)


def apply(
    state: CustomerState,
    event_type: str,
    event: dict[str, Any],
    starts: list[Start],
    flows: FlowSet,
    base_ms: int,
    now_ms: int,
    *,
    owned: bool = False,
) -> CustomerState:
    """An event of the customer: runs it exits end, runs waiting for it go on, then
    the runs it starts begin. Returns ``state`` itself when nothing changed.
    ``owned``: as for ``start``."""
    if state.runs and event_type in flows.listens:
        before = state
        state = _on_runs(state, event_type, event, flows, base_ms, now_ms)
        owned = owned or state is not before
    for wanted in starts:
        after = start(state, wanted, flows, now_ms, owned=owned)
        owned = owned or after is not state
        state = after
    return state


def _on_runs(
    state: CustomerState,
    event_type: str,
    event: dict[str, Any],
    flows: FlowSet,
    base_ms: int,
    now_ms: int,
) -> CustomerState:
    kept: list[Run] = []
    changed = False
    for run in state.runs:
        plan = flows.version(run.flow_id, run.version)
        if plan is None or run.episode > base_ms:
            kept.append(run)  # unknown flows end at their due time; later runs stay
            continue
        flow = plan.flow
        if any(
            m.event == event_type and _matches(m.where, state, run, event) for m in flow.exit_when
        ):
            changed = True
            continue
        if run.waiting_for == event_type:
            spec = getattr(plan.step_at(run.at), "wait_for", None)
            if spec is not None and _matches(spec.where, state, run, event):
                changed = True
                if spec.on_event == "exit":
                    continue
                following = plan.next_path(run.at)
                if following is None:
                    continue
                resumed = replace(run, at=following, waiting_for=None, due_ms=base_ms)
                resumed = replace(resumed, payload={**run.payload, "awaited": event})
                state, after, _, _ = advance(state, resumed, plan, flows, now_ms, sending=False)
                if after is not None:
                    kept.append(after)
                continue
        kept.append(run)
    return state.evolve(runs=tuple(kept)) if changed else state


def _matches(where: str | None, state: CustomerState, run: Run, event: dict[str, Any]) -> bool:
    if where is None:
        return True
    try:
        return holds(where, variables(state, run, event))
    except ConditionFailed:
        return False  # an event the condition cannot judge does not match


def fire(state: CustomerState, flows: FlowSet, now_ms: int) -> Fired:
    """Run every due run; returns the same state object when nothing was due."""
    if not state.runs or min(r.due_ms for r in state.runs) > now_ms:
        return Fired(state, [], [])
    kept: list[Run] = []
    commands: list[SendCommand] = []
    notes: list[Note] = []
    for run in state.runs:
        if run.due_ms > now_ms:
            kept.append(run)
            continue
        current = flows.get(run.flow_id)
        if current is None or not current.enabled:
            continue  # a flow switched off or removed ends its runs
        plan = flows.version(run.flow_id, run.version) or current
        held = inactivity.hold(run, state, now_ms)
        if held is not None:
            kept.append(held)
            continue
        state, after, sent, noted = advance(state, run, plan, flows, now_ms, sending=True)
        commands.extend(sent)
        notes.extend(noted)
        if after is not None:
            kept.append(after)
    return Fired(state.evolve(runs=tuple(kept)), commands, notes)


def release_waiting(state: CustomerState, now_ms: int) -> CustomerState:
    """Runs whose send waited for an address, or for a double opt-in, are due at once
    when the profile now has what they waited for."""
    ready = set()
    if state.profile.email:
        ready.add(send.AWAITING_ADDRESS)
    if state.profile.consent.get("email") == "subscribed":
        ready.add(send.AWAITING_CONSENT)
    if not ready or not any(ready.intersection(r.payload) for r in state.runs):
        return state
    runs = tuple(
        replace(r, due_ms=min(r.due_ms, now_ms)) if ready.intersection(r.payload) else r
        for r in state.runs
    )
    return state.evolve(runs=runs)


def started_marks(state: CustomerState, flow_id: str, at_ms: int) -> tuple[FlowMark, ...]:
    """The customer's flow marks with ``flow_id`` started at ``at_ms``."""
    old = state.mark_of(flow_id) or FlowMark(flow_id)
    new = replace(old, started_ms=max(old.started_ms, at_ms))
    return (*(m for m in state.flow_marks if m.flow_id != flow_id), new)
