"""Events/s through ONE stream worker, next to a bare consumer loop on the same events.

Per repeat: a fresh topic prefix; the four triggers (one per kind, delays of a day so
none fires); N clickstream events produced up front; then

* ceiling: a confluent-kafka consumer, partitions assigned by hand, ``consume(1000)``
  and ``orjson.loads`` of every value: what reading and parsing alone costs;
* worker: ``python -m nudge worker``, its ``nudge_events_total`` counter scraped from
  /metrics; the rate between the 10 % and 90 % crossings excludes start-up and tail.

    python benchmarks/stream_throughput.py [--events 100000] [--customers 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from typing import Any

import orjson
from _harness import (
    Environment,
    environment,
    http_get,
    machine,
    markdown_table,
    median,
    metric,
    produce_all,
    say,
    steady_rate,
    wait_for,
)

from nudge.cli.triggers import publish_definitions
from nudge.settings import Settings
from nudge.topics import create_topics

TARGET_EVENTS_S = 5000.0
TRIGGERS: list[dict[str, Any]] = [
    {"id": "bench-cart", "kind": "abandoned_cart", "delay": "P1D", "follow_up": {"delay": "P2D"}},
    {"id": "bench-view", "kind": "abandoned_view", "delay": "P1D"},
    {"id": "bench-category", "kind": "abandoned_category", "delay": "P1D"},
    {"id": "bench-search", "kind": "abandoned_search", "delay": "P1D"},
]
#: A storefront's mix: mostly product views.
MIX = (
    ("product_view", 0.70),
    ("category_view", 0.10),
    ("search", 0.07),
    ("cart_add", 0.08),
    ("cart_remove", 0.05),
)
QUERIES = ("red shoes", "linen shirt", "kettle", "desk lamp", "yoga mat", "headphones", "mug")


def events(n: int, customers: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) clickstream records over ``customers`` ids, a realistic mix."""
    rng = random.Random(seed)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    start_ms = int(time.time() * 1000) - n  # one ms apart, in the past
    for i in range(n):
        customer = f"c{rng.randrange(customers):06d}"
        kind = rng.choices(kinds, weights)[0]
        product = f"p-{rng.randrange(2000):05d}"
        event: dict[str, Any] = {
            "event_id": f"e{i:08d}",
            "type": kind,
            "customer_id": customer,
            "ts": start_ms + i,
            "session_id": f"s-{customer}",
        }
        if kind == "product_view":
            event.update(product_id=product, category_id=f"cat-{rng.randrange(40):02d}")
        elif kind == "category_view":
            event["category_id"] = f"cat-{rng.randrange(40):02d}"
        elif kind == "search":
            event["query"] = rng.choice(QUERIES)
        else:
            event.update(product_id=product, quantity=1 + rng.randrange(3))
            if kind == "cart_add":
                event["price"] = round(5 + rng.random() * 200, 2)
        yield customer.encode(), orjson.dumps(event)


def ceiling(settings: Settings, total: int, timeout_s: float) -> tuple[float, float]:
    """(steady events/s, wall seconds) of a bare consume + orjson.loads loop."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = settings.topic("clickstream")
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.app_id}-ceiling",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "fetch.max.bytes": 8 * 1024 * 1024,
        }
    )
    try:
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)]
        )
        samples: list[tuple[float, float]] = []
        count = 0
        started = time.perf_counter()
        while count < total:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"ceiling read only {count}/{total}")
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is not None:
                    continue
                orjson.loads(message.value() or b"")
                count += 1
            samples.append((time.perf_counter(), float(count)))
        return steady_rate(samples, total), samples[-1][0] - started
    finally:
        consumer.close()


def worker(
    env: Environment, settings: Settings, total: int, timeout_s: float
) -> tuple[float, float]:
    """(steady events/s, seconds from spawn to the last event counted) of one worker."""
    url = f"http://127.0.0.1:{settings.web_port}/metrics"
    topic = settings.topic("clickstream")
    spawned = time.perf_counter()
    proc = env.spawn("worker", settings, f"worker-{settings.app_id}.log")
    try:
        samples: list[tuple[float, float]] = []

        def done() -> bool:
            status, text = http_get(url)
            if status == 200:
                samples.append(
                    (time.perf_counter(), metric(text, "nudge_events_total", topic=topic))
                )
            return bool(samples) and samples[-1][1] >= total

        wait_for(done, f"worker to count {total} events", timeout_s, [proc], interval_s=0.2)
        return steady_rate(samples, total), samples[-1][0] - spawned
    finally:
        env.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=180.0, help="per measurement, seconds")
    args = parser.parse_args()

    worker_rates: list[float] = []
    ceiling_rates: list[float] = []
    rows: list[list[object]] = []
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            settings = env.settings("stream", partitions=args.partitions)
            create_topics(settings)
            publish_definitions(
                settings.kafka_bootstrap, settings.topic("trigger-config"), TRIGGERS
            )
            produced = produce_all(
                settings.kafka_bootstrap,
                settings.topic("clickstream"),
                events(args.events, args.customers, seed=repeat),
            )
            c_rate, c_wall = ceiling(settings, produced, args.timeout)
            w_rate, w_wall = worker(env, settings, produced, args.timeout)
            ceiling_rates.append(c_rate)
            worker_rates.append(w_rate)
            rows.append([repeat, f"{w_rate:,.0f}", f"{c_rate:,.0f}", f"{w_rate / c_rate:.1%}"])
            say(
                f"repeat {repeat}: worker {w_rate:,.0f} events/s (spawn to last event "
                f"{w_wall:.1f}s); ceiling {c_rate:,.0f} events/s (wall {c_wall:.1f}s); "
                f"ratio {w_rate / c_rate:.1%}"
            )

    w_med, c_med = median(worker_rates), median(ceiling_rates)
    say()
    say(
        f"{args.events:,} events over {args.customers:,} customers, {args.partitions} "
        f"partitions, 4 triggers active; {args.repeats} repeats; {machine()}"
    )
    say(markdown_table(["repeat", "worker events/s", "ceiling events/s", "worker/ceiling"], rows))
    say()
    say(
        markdown_table(
            ["measure", "median events/s", "vs ceiling", "target", "meets target"],
            [
                [
                    "nudge worker (1 process)",
                    f"{w_med:,.0f}",
                    f"{w_med / c_med:.1%}",
                    f"{TARGET_EVENTS_S:,.0f}",
                    "yes" if w_med >= TARGET_EVENTS_S else "no",
                ],
                ["ceiling: confluent-kafka consume + orjson", f"{c_med:,.0f}", "100%", "", ""],
            ],
        )
    )


if __name__ == "__main__":
    main()
