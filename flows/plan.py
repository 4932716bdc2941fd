"""Flows ready to run: each definition with its version, step lookup and send ordinals,
and the set of them a worker holds, indexed for the hot path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from nudge.flows.definition import Flow, flow_version, parse_flow
from nudge.flows.shorthand import is_shorthand
from nudge.flows.steps.branch import IfStep
from nudge.flows.steps.send import SendStep
from nudge.flows.steps.split import SplitStep
from nudge.flows.steps.wait import WaitStep
from nudge.flows.steps.wait_for import WaitForStep
from nudge.flows.triggers.abandonment import AbandonmentTrigger
from nudge.flows.triggers.catalog import BackInStockTrigger, PriceDropTrigger
from nudge.flows.triggers.date import DateTrigger
from nudge.flows.triggers.event import EventTrigger
from nudge.flows.triggers.inactivity import InactivityTrigger
from nudge.flows.triggers.seller import SellerSalesTrigger
from nudge.models.state import StepPath

DEFAULT_SMART_SENDING_MS = 12 * 3_600_000


class FlowPlan:
    """One version of one flow."""

    __slots__ = (
        "_paths",
        "first_wait",
        "flow",
        "id",
        "kind",
        "listens",
        "send_ordinals",
        "shorthand",
        "version",
    )

    def __init__(self, flow: Flow, version: str, *, shorthand: bool = False) -> None:
        self.flow = flow
        #: written as an abandonment shorthand: errors are named as it was written
        self.shorthand = shorthand
        self.id = flow.id
        self.version = version
        self._paths: dict[StepPath, Any] = {}
        self.send_ordinals: dict[StepPath, int] = {}
        for path, step in _paths(flow.steps, ()):
            self._paths[path] = step
            if isinstance(step, SendStep):
                self.send_ordinals[path] = len(self.send_ordinals)
        first = flow.steps[0]
        following = self.next_path((0,))
        #: (the step after it, the delay) when the flow starts with a fixed wait: a run
        #: starts there at once, the hot path of the abandonment kinds
        self.first_wait: tuple[StepPath, int] | None = None
        if isinstance(first, WaitStep) and isinstance(first.wait, int) and following:
            self.first_wait = (following, first.wait)
        #: the event types that can change its active runs (``exit_when``, ``wait_for``)
        self.listens: frozenset[str] = frozenset(
            [m.event for m in flow.exit_when]
            + [
                step.wait_for.event
                for step in self._paths.values()
                if isinstance(step, WaitForStep)
            ]
        )
        trigger = flow.trigger
        #: what built-in templates and metrics call this flow's messages
        self.kind = (
            f"abandoned_{trigger.abandoned}" if isinstance(trigger, AbandonmentTrigger) else "flow"
        )

    @classmethod
    def parse(cls, data: Any) -> FlowPlan:
        """A definition as written, refused (``DefinitionError``) if invalid."""
        flow = parse_flow(data)
        return cls(flow, flow_version(data), shorthand=is_shorthand(data))

    @property
    def enabled(self) -> bool:
        return self.flow.enabled

    def step_at(self, path: StepPath) -> Any | None:
        return self._paths.get(path)

    def next_path(self, path: StepPath) -> StepPath | None:
        """The step after ``path``: the next in its branch, or after the branch's step."""
        while path:
            following = (*path[:-1], int(path[-1]) + 1)
            if following in self._paths:
                return following
            path = path[:-2]  # leave the branch: (2, "then", 3) -> (2,)
        return None


def _paths(steps: list[Any], prefix: StepPath) -> Iterator[tuple[StepPath, Any]]:
    for index, step in enumerate(steps):
        here = (*prefix, index)
        yield here, step
        if isinstance(step, IfStep):
            yield from _paths(step.if_.then, (*here, "then"))
            yield from _paths(step.if_.else_, (*here, "else"))
        elif isinstance(step, SplitStep):
            for variant, branch in step.split.steps.items():
                yield from _paths(branch, (*here, variant))


class FlowSet:
    """An immutable snapshot of the live flows, plus every version seen, for pinned runs."""

    __slots__ = (
        "_abandonment",
        "_by_event",
        "_catalog",
        "_current",
        "_dates",
        "_inactivity",
        "_seller_sales",
        "_versions",
        "listens",
        "per_item",
        "smart_sending_ms",
    )

    def __init__(
        self,
        plans: Iterable[FlowPlan] = (),
        versions: dict[tuple[str, str], FlowPlan] | None = None,
        *,
        smart_sending_ms: int = DEFAULT_SMART_SENDING_MS,
    ) -> None:
        #: the window of ``smart_sending: true`` (``NUDGE_SMART_SENDING``)
        self.smart_sending_ms = smart_sending_ms
        self._current: dict[str, FlowPlan] = {p.id: p for p in plans}
        self._versions = dict(versions or {})
        for plan in self._current.values():
            self._versions.setdefault((plan.id, plan.version), plan)
        by_event: dict[str, list[FlowPlan]] = {}
        abandonment: dict[str, list[FlowPlan]] = {}
        for plan in self._current.values():
            if not plan.enabled:
                continue
            trigger = plan.flow.trigger
            if isinstance(trigger, EventTrigger):
                by_event.setdefault(trigger.event, []).append(plan)
            elif isinstance(trigger, AbandonmentTrigger):
                abandonment.setdefault(trigger.abandoned, []).append(plan)
        self._by_event = {k: tuple(v) for k, v in by_event.items()}
        self._abandonment = {k: tuple(v) for k, v in abandonment.items()}
        self._inactivity = tuple(
            p for p in self._current.values()
            if p.enabled and isinstance(p.flow.trigger, InactivityTrigger)
        )  # fmt: skip
        self._dates = tuple(
            p for p in self._current.values()
            if p.enabled and isinstance(p.flow.trigger, DateTrigger)
        )  # fmt: skip
        self._seller_sales = tuple(
            p for p in self._current.values()
            if p.enabled and isinstance(p.flow.trigger, SellerSalesTrigger)
        )  # fmt: skip
        self._catalog = tuple(
            p for p in self._current.values()
            if p.enabled and isinstance(p.flow.trigger, PriceDropTrigger | BackInStockTrigger)
        )  # fmt: skip
        #: whether an enabled flow runs per ordered product (replenishment)
        self.per_item = any(
            isinstance(p.flow.trigger, EventTrigger) and p.flow.trigger.per_item
            for p in self._current.values()
            if p.enabled
        )
        #: the event types that can change runs of any flow, pinned versions included
        self.listens: frozenset[str] = frozenset().union(
            *(p.listens for p in self._versions.values())
        )

    @classmethod
    def of(cls, *definitions: Any, smart_sending_ms: int = DEFAULT_SMART_SENDING_MS) -> FlowSet:
        """From definitions as written (tests, the demo)."""
        return cls((FlowPlan.parse(d) for d in definitions), smart_sending_ms=smart_sending_ms)

    def get(self, flow_id: str) -> FlowPlan | None:
        """The current version."""
        return self._current.get(flow_id)

    def version(self, flow_id: str, version: str) -> FlowPlan | None:
        """The version a run is pinned to; the current one when that is not known
        (a run from before versions were kept, or one compacted away and not stored)."""
        return self._versions.get((flow_id, version)) or self._current.get(flow_id)

    def on_event(self, event_type: str) -> tuple[FlowPlan, ...]:
        """Enabled flows triggered by an event of this type."""
        return self._by_event.get(event_type, ())

    def dates(self) -> tuple[FlowPlan, ...]:
        """Enabled flows on the ``date`` trigger."""
        return self._dates

    def seller_sales(self) -> tuple[FlowPlan, ...]:
        """Enabled flows on the ``seller_sales`` trigger (marketplace milestones)."""
        return self._seller_sales

    def catalog(self) -> tuple[FlowPlan, ...]:
        """Enabled flows on the ``price_drop`` and ``back_in_stock`` triggers."""
        return self._catalog

    def inactivity(self) -> tuple[FlowPlan, ...]:
        """Enabled flows on the ``inactivity`` trigger."""
        return self._inactivity

    def abandonment(self, kind: str) -> tuple[FlowPlan, ...]:
        """Enabled flows on the ``abandoned`` trigger of this kind."""
        return self._abandonment.get(kind, ())

    def with_plan(self, plan: FlowPlan) -> FlowSet:
        merged = dict(self._current)
        merged[plan.id] = plan
        return FlowSet(merged.values(), self._versions, smart_sending_ms=self.smart_sending_ms)

    def with_version(self, plan: FlowPlan) -> FlowSet:
        """Another known version, for the runs pinned to it; the current ones stay."""
        if (plan.id, plan.version) in self._versions:
            return self
        versions = {**self._versions, (plan.id, plan.version): plan}
        return FlowSet(self._current.values(), versions, smart_sending_ms=self.smart_sending_ms)

    def knows(self, flow_id: str, version: str) -> bool:
        return (flow_id, version) in self._versions

    def with_smart_sending(self, window_ms: int) -> FlowSet:
        return FlowSet(self._current.values(), self._versions, smart_sending_ms=window_ms)

    def __iter__(self) -> Iterator[FlowPlan]:
        return iter(self._current.values())

    def __len__(self) -> int:
        return len(self._current)
