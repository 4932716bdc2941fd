"""The processor, in-process: an order read before the click it answers.

``clickstream`` and ``orders`` are separate topics, read independently: the order may
be applied first. The processor must hand the logic what the order bought from (the
catalogue's categories) even when no category run is open yet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from nudge import codec
from nudge.clock import ManualClock
from nudge.models.state import CustomerState
from nudge.shared_state import SharedState
from nudge.streams.metrics import StreamMetrics
from nudge.streams.processor import Processor
from nudge.trigger_registry import TriggerRegistry


@dataclass
class Record:
    value: bytes
    key: bytes
    topic: str
    offset: int
    partition: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[bytes, CustomerState] = {}

    def get(self, key: bytes) -> CustomerState | None:
        return self.data.get(key)

    def put(self, key: bytes, value: CustomerState) -> None:
        self.data[key] = value

    async def flush(self) -> None:
        return None

    def items(self) -> Any:
        return self.data.items()


class NoLetters:
    def send(self, message: Any, error: Any) -> None:
        raise AssertionError(f"dead letter: {error}")

    async def flush(self) -> None:
        return None


def processor_for(
    definition: dict[str, Any], shared: SharedState, store: MemoryStore, clock: ManualClock
) -> Processor:
    """A processor with one flow, its state in ``store``, sending nowhere."""
    registry = TriggerRegistry()
    registry.apply_record(definition["id"].encode(), orjson.dumps(definition))
    return Processor(
        store=store,  # type: ignore[arg-type]
        registry=registry,
        shared=shared,
        dead_letters=NoLetters(),  # type: ignore[arg-type]
        send_command=lambda command: None,
        clock=clock,
        metrics=StreamMetrics(),
        max_payload_bytes=65536,
    )


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[SharedState]:
    client = aioredis.from_url(redis_url)
    state = SharedState(client, f"order-first-{uuid.uuid4().hex[:8]}")
    await state.put_products(
        [{"product_id": "p1", "title": "Trail Shoe", "url": "https://s.example/p1",
          "price": 89.0, "currency": "EUR", "category_ids": ["shoes"]}]
    )  # fmt: skip
    yield state
    await client.aclose()


async def test_an_order_applied_before_the_category_view_it_answers(shared: SharedState) -> None:
    clock = ManualClock()
    store = MemoryStore()
    definition = {"id": "category", "kind": "abandoned_category", "delay": 60}
    processor = processor_for(definition, shared, store, clock)
    now = clock.now_ms()
    view = {"event_id": "v1", "customer_id": "fay", "ts": now - 5, "type": "category_view",
            "category_id": "shoes"}  # fmt: skip
    order = {"event_id": "o1", "customer_id": "fay", "ts": now, "type": "order_placed",
             "order_id": "o-1", "total": 89.0, "currency": "EUR",
             "items": [{"product_id": "p1", "quantity": 1, "price": 89.0}]}  # fmt: skip

    await processor.on_orders([Record(orjson.dumps(order), b"fay", "orders", 0)],
                              codec.decode_order, "orders")  # fmt: skip
    await processor.on_clicks([Record(orjson.dumps(view), b"fay", "clickstream", 0)],
                              codec.decode_click, "clickstream")  # fmt: skip

    state = store.get(b"fay")
    assert state is not None
    assert [s.value for s in state.bought_categories] == ["shoes"]
    assert state.runs == (), "the view was answered by the order applied before it"


async def test_an_order_after_a_search_counts_towards_the_searched_words(
    shared: SharedState,
) -> None:
    clock = ManualClock()
    definition = {"id": "search", "kind": "abandoned_search"}
    processor = processor_for(definition, shared, MemoryStore(), clock)
    now = clock.now_ms()
    search = {"event_id": "s1", "customer_id": "gil", "ts": now - 60_000, "type": "search",
              "query": "trail shoes"}  # fmt: skip
    order = {"event_id": "o2", "customer_id": "gil", "ts": now, "type": "order_placed",
             "order_id": "o-2", "total": 89.0, "currency": "EUR",
             "items": [{"product_id": "p1", "quantity": 1, "price": 89.0}]}  # fmt: skip
    await processor.on_clicks([Record(orjson.dumps(search), b"gil", "clickstream", 0)],
                              codec.decode_click, "clickstream")  # fmt: skip
    await processor.on_orders([Record(orjson.dumps(order), b"gil", "orders", 0)],
                              codec.decode_order, "orders")  # fmt: skip
    await processor.flush_popularity()
    assert processor.signals._writing is not None
    await processor.signals._writing
    assert await shared.search_conversions(["trail", "shoe"]) == {"p1": 2.0}, "once per word"
    assert await shared.popular_ids(0, 5) == ["p1"]
