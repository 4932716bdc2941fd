"""Small helpers over the tuple of armed timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.state import CustomerState, Pending
from models.triggers import TriggerDef


def arm(
    state: CustomerState, trigger: TriggerDef, base_ms: int, payload: dict[str, Any]
) -> CustomerState:
    """(Re)arm step 0 of ``trigger``: new activity opens a new episode."""
    current = state.pending_for(trigger.id)
    if current is not None and current.episode > base_ms:
        return state  # a late, out-of-order event must not move an episode backwards
    fresh = Pending(trigger.id, 0, base_ms + trigger.delay_ms, base_ms, payload)
    if current == fresh:
        return state
    others = tuple(p for p in state.pending if p.trigger_id != trigger.id)
    return state.evolve(pending=(*others, fresh))


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
