"""Small helpers over the tuple of armed timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.state import CustomerState, Pending
from models.triggers import TriggerDef


def arm_pending(
    pending: tuple[Pending, ...], trigger: TriggerDef, base_ms: int, payload: dict[str, Any]
) -> tuple[Pending, ...]:
    """(Re)arm step 0 of ``trigger``: new activity opens a new episode.

    Returns ``pending`` itself when nothing changes.
    """
    trigger_id = trigger.id
    due_ms = base_ms + trigger.delay_ms
    for current in pending:
        if current.trigger_id == trigger_id:
            if current.episode > base_ms:
                return pending  # a late, out-of-order event must not move an episode back
            if (current.step, current.due_ms, current.episode) == (0, due_ms, base_ms) and (
                current.payload == payload
            ):
                return pending
            others = tuple(p for p in pending if p is not current)
            return (*others, Pending(trigger_id, 0, due_ms, base_ms, payload))
    return (*pending, Pending(trigger_id, 0, due_ms, base_ms, payload))


def arm(
    state: CustomerState, trigger: TriggerDef, base_ms: int, payload: dict[str, Any]
) -> CustomerState:
    pending = arm_pending(state.pending, trigger, base_ms, payload)
    return state if pending is state.pending else state.evolve(pending=pending)


def drop_where(state: CustomerState, doomed: Callable[[Pending], bool]) -> CustomerState:
    kept = tuple(p for p in state.pending if not doomed(p))
    if len(kept) == len(state.pending):
        return state
    return state.evolve(pending=kept)


def update_payloads(
    state: CustomerState,
    trigger_ids: frozenset[str],
    change: Callable[[Pending], Pending | None],
) -> CustomerState:
    """Rewrite (or drop, when ``change`` returns None) the timers of some triggers."""
    result: list[Pending] = []
    changed = False
    for p in state.pending:
        if p.trigger_id in trigger_ids:
            new = change(p)
            changed = changed or new is not p
            if new is not None:
                result.append(new)
        else:
            result.append(p)
    return state.evolve(pending=tuple(result)) if changed else state
