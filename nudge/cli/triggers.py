"""Reading flow definitions from YAML or JSON files, and publishing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from nudge.errors import ConfigError
from nudge.flows.errors import DefinitionError
from nudge.flows.plan import FlowPlan
from nudge.template_check import check_templates


def load_definitions(path: Path) -> list[dict[str, Any]]:
    """A file holds one definition, a list of them, or ``{"triggers": [...]}``.

    Every definition (a flow, or an abandonment shorthand) is validated and its
    templates rendered once against a sample context; one ``ConfigError`` lists every
    problem in the file, each with its path, or none is returned.
    """
    text = path.read_text(encoding="utf-8")
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    if isinstance(data, dict) and "triggers" in data:
        data = data["triggers"]
    items = data if isinstance(data, list) else [data]
    errors: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: definition #{index + 1}"
        try:
            plan = FlowPlan.parse(item)
        except DefinitionError as exc:
            errors.extend(f"{where}: {line}" for line in exc.lines())
            continue
        if plan.id in seen:
            errors.append(f"{where}: {plan.id}: the id is used twice in this file")
        seen.add(plan.id)
        # Syntax is checked above; this renders, so what the sandbox refuses only at
        # send time (unsafe access, unknown filters, TypeErrors) is refused here.
        errors.extend(f"{where}: {problem}" for problem in check_templates(plan))
    if errors:
        raise ConfigError("\n".join(errors))
    return items


def publish_definitions(bootstrap: str, topic: str, definitions: list[dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    from nudge.kafka import producer_config

    producer = Producer(producer_config(bootstrap))
    failures: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.key()!r}: {err}")

    for definition in definitions:
        producer.produce(
            topic,
            key=definition["id"].encode(),
            value=orjson.dumps(definition),
            on_delivery=on_delivery,
        )
    remaining = producer.flush(30)
    if remaining or failures:
        raise ConfigError(f"could not publish all triggers: {failures or remaining}")


def published_ids(bootstrap: str, topic: str, timeout_s: float = 30.0) -> set[str]:
    """The ids ``topic`` (trigger-config) holds now: last value per key, deletions
    (null values) removing theirs."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from nudge.kafka import client_config

    consumer = Consumer(
        client_config(
            bootstrap,
            **{"group.id": "nudge-triggers-cli", "enable.auto.commit": False},
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        ends: dict[int, int] = {}
        for partition in metadata.partitions:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > 0:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        latest: dict[bytes, bool] = {}
        while ends:
            message = consumer.poll(timeout_s)
            if message is None:
                raise ConfigError(f"{topic}: no record within {timeout_s:g} s while reading it")
            error = message.error()
            if error is not None:
                raise ConfigError(f"{topic}: {error.str()}")
            latest[message.key() or b""] = message.value() is not None
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()
    return {key.decode() for key, present in latest.items() if present}


def promo_pools(definitions: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The promo pools the definitions' send steps draw from, with where each is used."""
    from nudge.flows.definition import walk_steps
    from nudge.flows.steps.send import SendStep

    used: dict[str, list[str]] = {}
    for definition in definitions:
        plan = FlowPlan.parse(definition)
        for path, step in walk_steps(plan.flow.steps):
            if isinstance(step, SendStep) and step.send.promo is not None:
                used.setdefault(step.send.promo.pool, []).append(f"{plan.id}.{path}.send.promo")
    return used


async def missing_pools(redis_url: str, namespace: str, used: dict[str, list[str]]) -> list[str]:
    """A line per use of a pool that holds no codes at all (never imported or generated)."""
    from redis.asyncio import Redis

    from nudge.promo import PromoPools

    redis = Redis.from_url(redis_url)
    try:
        pools = PromoPools(redis, namespace)
        missing = [pool for pool in used if not await pools.exists(pool)]
    finally:
        await redis.aclose()
    return [
        f"{where}: unknown promo pool {pool!r} (nudge promo import / generate {pool} first)"
        for pool in missing
        for where in used[pool]
    ]
