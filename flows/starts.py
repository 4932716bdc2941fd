"""``Start``: a trigger's request to start (or restart) a run; the engine decides,
by the flow's ``reentry``, whether it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan


@dataclass(frozen=True, slots=True)
class Start:
    plan: FlowPlan
    #: when the run starts: the event's time, never in the future
    base_ms: int
    payload: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    #: when the run's first step is due, if later than ``base_ms`` (an inactivity
    #: wait); such a run starts over on every new start, whatever ``reentry`` says
    due_ms: int | None = None
