"""Live trigger definitions from the compacted ``trigger-config`` topic.

Every stream and delivery process reads the whole topic (no consumer group), so
each sees every trigger whatever partitions it owns. The broker may drop
tombstones, so a definition with ``"enabled": false`` (or ``"deleted": true``) is
how a trigger is switched off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from models.triggers import TriggerDef, TriggerSet
from nudge.errors import ConfigError
from nudge.template_check import check_templates
from nudge.topic_tail import TopicTail

log = logging.getLogger(__name__)

Rejection = tuple[str, str]  # (trigger id or key, reason)


def parse_definition(key: bytes | None, value: bytes | None) -> TriggerDef:
    if not value:
        raise ConfigError("empty trigger definition")
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"trigger definition is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("deleted") is True:
        data = {**data, "enabled": False}
        data.pop("deleted")
    definition = TriggerDef.from_dict(data)
    # The same render check as `nudge triggers apply`, for definitions that reached
    # the topic by another route: refused here, the previous definition keeps working.
    errors = check_templates(definition)
    if errors:
        raise ConfigError("; ".join(errors))
    if key is not None and key.decode("utf-8", "replace") != definition.id:
        raise ConfigError(f"record key {key!r} does not match trigger id {definition.id!r}")
    return definition


class TriggerRegistry:
    """The current ``TriggerSet``; readers take ``.current`` once per batch."""

    def __init__(self, definitions: TriggerSet | None = None) -> None:
        self.current = definitions or TriggerSet()
        self.ready = asyncio.Event()
        self.rejections: dict[str, str] = {}
        self.on_reject: list[Callable[[str, str], Any]] = []

    def apply_record(self, key: bytes | None, value: bytes | None) -> TriggerDef | None:
        """Apply one topic record; a bad one is recorded and the old definition kept."""
        name = key.decode("utf-8", "replace") if key else "<no key>"
        try:
            definition = parse_definition(key, value)
        except ConfigError as exc:
            self.rejections[name] = str(exc)
            log.warning("trigger config rejected: %s: %s", name, exc)
            for callback in self.on_reject:
                callback(name, str(exc))
            return None
        self.rejections.pop(definition.id, None)
        self.current = self.current.with_definition(definition)
        return definition

    def get(self, trigger_id: str) -> TriggerDef | None:
        return self.current.get(trigger_id)


class TriggerFeed:
    """Tails ``trigger-config`` from the beginning into a ``TriggerRegistry``."""

    def __init__(self, registry: TriggerRegistry, bootstrap: str, topic: str) -> None:
        self.registry = registry
        self._tail = TopicTail(bootstrap, topic, registry.apply_record)
        self._tail.ready = registry.ready

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self._tail.run(stop)
