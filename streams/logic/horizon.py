"""What a customer inactive past the horizon keeps: only what flows still need.

A shop's customer base is mostly people who have not been back for months. Their
browsing (views, categories, searches), an old cart, the ids kept against redelivery
and the categories kept against out-of-order topics stop mattering long before the
customer does; they are most of a state's memory and changelog bytes.

Kept: the profile with its consent and when it changed (opt-out evidence), every
pending run (inactivity and date timers), the flow marks (``reentry``, smart sending),
what was bought and when (replenishment intervals, recommendations), order counts and
totals (conditions). Browsing also stays while an abandonment run still waits on it.
"""

from __future__ import annotations

from collections.abc import Collection

from nudge.models.state import CustomerState

DROPPED = ("views", "categories", "searches", "cart", "recent_events", "bought_categories")


def compact_inactive(
    state: CustomerState, now_ms: int, horizon_ms: int, browsing_flows: Collection[str]
) -> CustomerState:
    """``state`` without what stopped mattering, if its last activity is older than
    ``horizon_ms``; the same object otherwise, or if there is nothing to drop.
    ``browsing_flows``: the ids of flows whose runs read the browsing (abandonment)."""
    if horizon_ms <= 0 or now_ms - state.last_activity_ms <= horizon_ms:
        return state
    if any(run.flow_id in browsing_flows for run in state.runs):
        return state
    if not any(getattr(state, name) for name in DROPPED):
        return state
    return state.evolve(**{name: () for name in DROPPED})
