"""Live flow definitions from the compacted ``trigger-config`` topic.

Every stream and delivery process reads the whole topic (no consumer group), so
each sees every flow whatever partitions it owns. The broker may drop tombstones, so
a definition with ``"enabled": false`` (or ``"deleted": true``) is how a flow is
switched off. Every version read stays known, for the runs pinned to it.

``trigger-config`` is compacted by flow id, so an old version a run is pinned to may
vanish from it. Stream workers therefore also write each version they see to
``flow-versions`` (compacted by ``id@version``, which no later version replaces), and
every process reads that topic before ``trigger-config``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from nudge.errors import ConfigError
from nudge.flows.errors import DefinitionError
from nudge.flows.plan import DEFAULT_SMART_SENDING_MS, FlowPlan, FlowSet
from nudge.template_check import check_templates
from nudge.topic_tail import TopicTail

if TYPE_CHECKING:
    from nudge.settings import Settings

log = logging.getLogger(__name__)

Rejection = tuple[str, str]  # (flow id or key, reason)


def parse_definition(key: bytes | None, value: bytes | None, *, check: bool = True) -> FlowPlan:
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
    errors = check_templates(plan) if check else []
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
        #: called with every definition applied (the worker arms ``include_existing``)
        self.on_plan: list[Callable[[FlowPlan], Any]] = []

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
        for on_plan in self.on_plan:
            on_plan(plan)
        return plan

    def get(self, flow_id: str) -> FlowPlan | None:
        return self.current.get(flow_id)

    def apply_version(self, key: bytes | None, value: bytes | None) -> FlowPlan | None:
        """A record of ``flow-versions``: a version kept for pinned runs, not made current.
        One that no longer parses (a field since removed) is skipped: its runs go on
        with the current version, as when a version is not known at all."""
        try:
            plan = parse_definition(None, value, check=False)
        except (ConfigError, DefinitionError) as exc:
            log.warning("kept flow version %r unusable: %s", key, str(exc).replace("\n", "; "))
            return None
        self.current = self.current.with_version(plan)
        return plan


class TriggerFeed:
    """Tails ``flow-versions`` and then ``trigger-config`` from the beginning into a
    ``TriggerRegistry``; with ``keep_versions``, writes versions not yet kept."""

    def __init__(
        self,
        registry: TriggerRegistry,
        bootstrap: str,
        topic: str,
        versions_topic: str | None = None,
        *,
        keep_versions: bool = False,
    ) -> None:
        self.registry = registry
        self.bootstrap = bootstrap
        self.versions_topic = versions_topic
        self.keep_versions = keep_versions and versions_topic is not None
        self._tail = TopicTail(bootstrap, topic, self._apply)
        self._tail.ready = registry.ready
        self._producer: Any = None

    @classmethod
    def from_settings(
        cls, registry: TriggerRegistry, settings: Settings, *, keep_versions: bool = False
    ) -> TriggerFeed:
        """The feed of the configured ``trigger-config`` and ``flow-versions`` topics."""
        return cls(
            registry,
            settings.kafka_bootstrap,
            settings.topic("trigger-config"),
            settings.topic("flow-versions"),
            keep_versions=keep_versions,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        tasks = []
        if self.versions_topic is not None:
            versions = TopicTail(self.bootstrap, self.versions_topic, self.registry.apply_version)
            tasks.append(asyncio.create_task(versions.run(stop), name="flow-versions"))
            await _first(versions.ready.wait(), tasks[0])
        if self.keep_versions:
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await self._producer.start()
        try:
            await self._tail.run(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._producer is not None:
                await self._producer.stop()

    async def _apply(self, key: bytes | None, value: bytes | None) -> None:
        known = self.registry.current
        plan = self.registry.apply_record(key, value)
        if plan is None or self._producer is None or known.knows(plan.id, plan.version):
            return
        # Several workers may write the same version: the same key and value, which
        # compaction folds into one.
        assert self.versions_topic is not None and value is not None
        record_key = f"{plan.id}@{plan.version}".encode()
        await self._producer.send_and_wait(self.versions_topic, value, key=record_key)


async def _first(ready: Awaitable[Any], task: asyncio.Task[None]) -> None:
    """Wait for ``ready``; a tail that fails first (no such topic) raises its error."""
    waiting = asyncio.ensure_future(ready)
    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done() and not waiting.done():
        waiting.cancel()
        task.result()
