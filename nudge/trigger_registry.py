"""Live flow definitions from the compacted ``trigger-config`` topic.

Every stream and delivery process reads the whole topic (no consumer group), so
each sees every flow whatever partitions it owns. The broker may drop tombstones, so
a definition with ``"enabled": false`` (or ``"deleted": true``) is how a flow is
switched off. Every version read stays known, for the runs pinned to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from flows.plan import DEFAULT_SMART_SENDING_MS, FlowPlan, FlowSet
from nudge.errors import ConfigError
from nudge.template_check import check_templates
from nudge.topic_tail import TopicTail

log = logging.getLogger(__name__)

Rejection = tuple[str, str]  # (flow id or key, reason)


def parse_definition(key: bytes | None, value: bytes | None) -> FlowPlan:
    if not value:
        raise ConfigError("empty flow definition")
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"flow definition is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("deleted") is True:
        data = {**data, "enabled": False}
        data.pop("deleted")
    plan = FlowPlan.parse(data)
    # The same render check as `nudge triggers apply`, for definitions that reached
    # the topic by another route: refused here, the previous definition keeps working.
    errors = check_templates(plan)
    if errors:
        raise ConfigError("; ".join(errors))
    if key is not None and key.decode("utf-8", "replace") != plan.id:
        raise ConfigError(f"record key {key!r} does not match flow id {plan.id!r}")
    return plan


class TriggerRegistry:
    """The current ``FlowSet``; readers take ``.current`` once per batch."""

    def __init__(
        self, definitions: FlowSet | None = None, *, smart_sending_ms: int | None = None
    ) -> None:
        window = DEFAULT_SMART_SENDING_MS if smart_sending_ms is None else smart_sending_ms
        self.current = definitions or FlowSet(smart_sending_ms=window)
        if smart_sending_ms is not None:
            self.current = self.current.with_smart_sending(smart_sending_ms)
        self.ready = asyncio.Event()
        self.rejections: dict[str, str] = {}
        self.on_reject: list[Callable[[str, str], Any]] = []

    def apply_record(self, key: bytes | None, value: bytes | None) -> FlowPlan | None:
        """Apply one topic record; a bad one is recorded and the old definition kept."""
        name = key.decode("utf-8", "replace") if key else "<no key>"
        try:
            plan = parse_definition(key, value)
        except ConfigError as exc:
            self.rejections[name] = str(exc)
            log.warning("flow definition rejected: %s: %s", name, str(exc).replace("\n", "; "))
            for callback in self.on_reject:
                callback(name, str(exc))
            return None
        self.rejections.pop(plan.id, None)
        self.current = self.current.with_plan(plan)
        return plan

    def get(self, flow_id: str) -> FlowPlan | None:
        return self.current.get(flow_id)


class TriggerFeed:
    """Tails ``trigger-config`` from the beginning into a ``TriggerRegistry``."""

    def __init__(self, registry: TriggerRegistry, bootstrap: str, topic: str) -> None:
        self.registry = registry
        self._tail = TopicTail(bootstrap, topic, registry.apply_record)
        self._tail.ready = registry.ready

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self._tail.run(stop)
