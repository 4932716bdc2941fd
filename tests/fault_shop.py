"""A storefront that keeps producing in the background while a scenario breaks things.

A plan is a list of ``Planned`` records (when, topic, customer, fields); ``ShopLoad``
plays it in a thread with real timestamps (timers count from the event's ``ts``), as
contract-shaped JSON keyed by customer id with the murmur2 partitioner. Producing is
patient (five-minute message timeout) so a broker restart delays records but does not
drop them; a record the broker still refused is reported, and the scenario leaves that
customer out of what it expects.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Producer

from nudge.kafka import producer_config
from nudge.settings import Settings

#: A profile comes first and its cart this long after, as a sign-up precedes shopping.
PROFILE_TO_CART_S = 1.0


@dataclass(frozen=True)
class Planned:
    at_s: float
    topic: str
    customer_id: str
    fields: dict[str, Any] = field(default_factory=dict)


def email_of(customer_id: str) -> str:
    return f"{customer_id}@example.com"


def profile(at_s: float, cid: str, consent: str = "subscribed") -> Planned:
    fields = {"email": email_of(cid), "first_name": cid.title(), "consent": {"email": consent}}
    return Planned(at_s, "customers", cid, fields)


def unsubscribe(at_s: float, cid: str) -> Planned:
    return Planned(at_s, "customers", cid, {"consent": {"email": "unsubscribed"}})


def cart_add(at_s: float, cid: str) -> Planned:
    fields = {"type": "cart_add", "product_id": "p-1", "quantity": 1, "price": 19.5}
    return Planned(at_s, "clickstream", cid, fields)


def signups_with_carts(
    ids: Iterable[str], *, start_s: float = 0.0, rate_per_s: float = 5.0
) -> list[Planned]:
    """Each customer signs up (subscribed) and adds to the cart a second later."""
    plan: list[Planned] = []
    for i, cid in enumerate(ids):
        at = start_s + i / rate_per_s
        plan += [profile(at, cid), cart_add(at + PROFILE_TO_CART_S, cid)]
    return plan


def spread(
    make: Callable[[float, str], Planned], ids: Iterable[str], *, start_s: float, rate_per_s: float
) -> list[Planned]:
    """``make(at_s, cid)`` for each customer, ``rate_per_s`` customers a second."""
    return [make(start_s + i / rate_per_s, cid) for i, cid in enumerate(ids)]


class ShopLoad(threading.Thread):
    def __init__(self, settings: Settings, plan: Iterable[Planned]) -> None:
        super().__init__(name="shop-load", daemon=True)
        self.settings = settings
        self.plan = sorted(plan, key=lambda p: p.at_s)
        self.produced = 0
        self.failed: list[str] = []  # customer ids whose record the broker refused
        self._halt = threading.Event()
        self._seq = itertools.count()

    def run(self) -> None:
        config = producer_config(
            self.settings.kafka_bootstrap, **{"linger.ms": 5, "message.timeout.ms": 300_000}
        )
        producer = Producer(config)
        started = time.monotonic()
        for planned in self.plan:
            wait = started + planned.at_s - time.monotonic()
            if wait > 0 and self._halt.wait(wait):
                break
            self._produce(producer, planned)
            producer.poll(0)
        producer.flush(300)

    def _produce(self, producer: Producer, planned: Planned) -> None:
        body = {
            "event_id": f"shop-{planned.topic}-{planned.customer_id}-{next(self._seq)}",
            "customer_id": planned.customer_id,
            "ts": int(time.time() * 1000),
            **planned.fields,
        }

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self.produced += 1
            else:
                self.failed.append(planned.customer_id)

        while True:
            try:
                producer.produce(
                    self.settings.topic(planned.topic),
                    key=planned.customer_id.encode(),
                    value=orjson.dumps(body),
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                producer.poll(0.1)

    @property
    def duration_s(self) -> float:
        return self.plan[-1].at_s if self.plan else 0.0

    def finish(self, timeout_s: float = 330.0) -> None:
        """Wait until every planned record was produced (or refused)."""
        self.join(timeout_s)
        if self.is_alive():
            raise AssertionError(f"the storefront did not finish within {timeout_s}s")

    def abort(self) -> None:
        self._halt.set()
        self.join(30)
