"""Versions of a flow outlive the compaction of ``trigger-config``: stream workers keep
each one on ``flow-versions``, which every process reads first. Against the test
broker; the embedded broker never compacts, so the compacted topic is played by a
fresh one that holds only the latest definition, as compaction would leave it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from nudge.cli.triggers import publish_definitions
from nudge.flows.plan import FlowPlan
from nudge.settings import Settings
from nudge.topics import create_topics
from nudge.trigger_registry import TriggerFeed, TriggerRegistry
from tests.pipeline_support import read_topic

pytestmark = pytest.mark.e2e


def welcome(subject: str) -> dict[str, Any]:
    return {
        "id": "welcome",
        "trigger": {"event": "customer_created"},
        "steps": [{"wait": "P1D"}, {"send": {"subject": subject}}],
    }


async def feed_until(
    settings: Settings, keep: bool, done: Callable[[TriggerRegistry], bool]
) -> TriggerRegistry:
    registry = TriggerRegistry()
    feed = TriggerFeed(
        registry,
        settings.kafka_bootstrap,
        settings.topic("trigger-config"),
        settings.topic("flow-versions"),
        keep_versions=keep,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        async with asyncio.timeout(30):
            await registry.ready.wait()
            while not done(registry):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return registry


def kept(settings: Settings) -> dict[str, bytes]:
    return {m.key().decode(): m.value() for m in read_topic(settings, "flow-versions")}


def test_a_version_compacted_off_trigger_config_is_still_known(
    make_settings: Callable[..., Settings],
) -> None:
    first, second = welcome("Hello"), welcome("Hi there")
    v1, v2 = FlowPlan.parse(first).version, FlowPlan.parse(second).version
    settings = make_settings()
    create_topics(settings)
    config = settings.topic("trigger-config")
    publish_definitions(settings.kafka_bootstrap, config, [first, second])
    asyncio.run(feed_until(settings, True, lambda r: len(kept(settings)) == 2))
    assert set(kept(settings)) == {f"welcome@{v1}", f"welcome@{v2}"}
    # A restarted worker writes nothing twice.
    asyncio.run(feed_until(settings, True, lambda r: True))
    assert len(read_topic(settings, "flow-versions")) == 2

    # After compaction only the latest definition is left on trigger-config.
    compacted = make_settings()
    create_topics(compacted)
    publish_definitions(compacted.kafka_bootstrap, compacted.topic("trigger-config"), [second])
    versions = [orjson.loads(value) for value in kept(settings).values()]
    publish_definitions(compacted.kafka_bootstrap, compacted.topic("flow-versions"), versions)
    registry = asyncio.run(feed_until(compacted, False, lambda r: True))
    old = registry.current.version("welcome", v1)
    assert old is not None and old.version == v1, "the pinned run's version"
    current = registry.current.get("welcome")
    assert current is not None and current.version == v2


def test_a_kept_version_that_no_longer_parses_is_skipped(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    create_topics(settings)
    publish_definitions(
        settings.kafka_bootstrap, settings.topic("flow-versions"), [{"id": "old", "dealy": 5}]
    )
    publish_definitions(settings.kafka_bootstrap, settings.topic("trigger-config"), [welcome("A")])
    registry = asyncio.run(feed_until(settings, False, lambda r: True))
    assert registry.current.get("welcome") is not None
