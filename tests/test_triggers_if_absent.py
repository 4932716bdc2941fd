"""``nudge triggers apply --if-absent``: first-time set-up that leaves live edits alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.cli.triggers import publish_definitions, published_ids
from nudge.settings import Settings
from nudge.topics import create_topics
from tests.pipeline_support import settings_env

pytestmark = pytest.mark.e2e


def cart(trigger_id: str, subject: str = "Still thinking it over?") -> dict[str, Any]:
    return {"id": trigger_id, "kind": "abandoned_cart", "delay": "PT1H", "subject": subject}


def test_only_flows_the_topic_lacks_are_published(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    create_topics(settings)
    topic = settings.topic("trigger-config")
    assert published_ids(settings.kafka_bootstrap, topic) == set()
    # A marketer's live edit of "cart-a", and a flow they deleted ("cart-b").
    publish_definitions(settings.kafka_bootstrap, topic, [cart("cart-a", "Edited live")])
    publish_definitions(settings.kafka_bootstrap, topic, [cart("cart-b")])
    _delete(settings, topic, "cart-b")
    assert published_ids(settings.kafka_bootstrap, topic) == {"cart-a"}

    path = tmp_path / "flows.yaml"
    path.write_text(yaml.safe_dump([cart("cart-a"), cart("cart-c")]), encoding="utf-8")
    result = CliRunner(env=settings_env(settings)).invoke(
        main, ["triggers", "apply", "--if-absent", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "kept cart-a (abandoned_cart, enabled)",
        "applied cart-c (abandoned_cart, enabled)",
    ]
    assert published_ids(settings.kafka_bootstrap, topic) == {"cart-a", "cart-c"}
    assert _latest(settings, topic)["cart-a"]["subject"] == "Edited live"


def _delete(settings: Settings, topic: str, trigger_id: str) -> None:
    from confluent_kafka import Producer

    from nudge.kafka import producer_config

    producer = Producer(producer_config(settings.kafka_bootstrap))
    producer.produce(topic, key=trigger_id.encode(), value=None)
    assert producer.flush(30) == 0


def _latest(settings: Settings, topic: str) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "t"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    latest: dict[str, Any] = {}
    try:
        while (message := consumer.poll(5)) is not None:
            key, value = (message.key() or b"").decode(), message.value()
            latest[key] = orjson.loads(value) if value is not None else None
    finally:
        consumer.close()
    return latest
