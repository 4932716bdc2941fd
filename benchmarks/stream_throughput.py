"""Events/s through ONE stream worker, next to a bare consumer loop on the same events.

A storefront's event mix: clicks (mostly product views), orders and their statuses,
and sign-ups on ``customers``. Per repeat, each configuration gets a fresh topic
prefix with the same N events produced up front:

* four kinds: the four abandonment shorthands (delays of a day, so none fires);
* standard flows: the same four, plus the shipped example flows (welcome, thank-you,
  order status, double opt-in), whose first messages go out during the run;
* ceiling: a confluent-kafka consumer, partitions assigned by hand, ``consume(1000)``
  and ``orjson.loads`` of every value: what reading and parsing alone costs.

A worker is ``python -m nudge worker``, its ``nudge_events_total`` counter scraped from
/metrics; the rate between the 10 % and 90 % crossings excludes start-up and tail.

    python benchmarks/stream_throughput.py [--events 100000] [--customers 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from _harness import (
    Environment,
    environment,
    free_port,
    http_get,
    machine,
    markdown_table,
    median,
    memory_mb,
    metric,
    produce_all,
    say,
    steady_rate,
    topic_totals,
    wait_for,
)

from nudge.cli.triggers import publish_definitions
from nudge.settings import Settings
from nudge.topics import create_topics

TARGET_EVENTS_S = 20_000.0  # issue 10: all triggers and the standard flows on
INPUT_TOPICS = ("clickstream", "orders", "customers")
EXAMPLES = Path(__file__).resolve().parents[1] / "flows" / "examples"
TRIGGERS: list[dict[str, Any]] = [
    {"id": "bench-cart", "kind": "abandoned_cart", "delay": "P1D", "follow_up": {"delay": "P2D"}},
    {"id": "bench-view", "kind": "abandoned_view", "delay": "P1D"},
    {"id": "bench-category", "kind": "abandoned_category", "delay": "P1D"},
    {"id": "bench-search", "kind": "abandoned_search", "delay": "P1D"},
]
#: Per event: a click (the MIX below), an order, an order status, or a sign-up.
TOPIC_MIX = (("clickstream", 0.94), ("order_placed", 0.03), ("order_status", 0.01),
             ("customers", 0.02))  # fmt: skip
#: A storefront's clicks: mostly product views.
MIX = (
    ("product_view", 0.70),
    ("category_view", 0.10),
    ("search", 0.07),
    ("cart_add", 0.08),
    ("cart_remove", 0.05),
)
QUERIES = ("red shoes", "linen shirt", "kettle", "desk lamp", "yoga mat", "headphones", "mug")


def standard_flows() -> list[dict[str, Any]]:
    """The four kinds plus every shipped example flow (promo codes left out: the
    benchmark has no pool)."""
    flows = list(TRIGGERS)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        flow = yaml.safe_load(path.read_text(encoding="utf-8"))
        for step in flow["steps"]:
            if "send" in step:
                step["send"].pop("promo", None)
        flows.append(flow)
    return flows


def events(
    n: int, customers: int, seed: int = 7, *, clicks_only: bool = False
) -> dict[str, list[tuple[bytes, bytes]]]:
    """(key, value) records per topic over ``customers`` ids, a storefront's mix."""
    rng = random.Random(seed)
    topics = [t for t, _ in TOPIC_MIX]
    topic_weights = (
        [1.0 if t == "clickstream" else 0.0 for t in topics]
        if clicks_only
        else [w for _, w in TOPIC_MIX]
    )
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    start_ms = int(time.time() * 1000) - n  # one ms apart, in the past
    out: dict[str, list[tuple[bytes, bytes]]] = {"clickstream": [], "orders": [], "customers": []}
    signed_up = 0
    for i in range(n):
        customer = f"c{rng.randrange(customers):06d}"
        what = rng.choices(topics, topic_weights)[0]
        base: dict[str, Any] = {
            "event_id": f"e{i:08d}",
            "customer_id": customer,
            "ts": start_ms + i,
        }
        if what == "customers":
            signed_up += 1
            fresh = f"n{seed}x{signed_up:06d}"  # a new customer: welcome, double opt-in
            consent = "pending" if rng.random() < 0.3 else "subscribed"
            base.update(customer_id=fresh, email=f"{fresh}@example.com",
                        first_name="Ann", consent={"email": consent})  # fmt: skip
            out["customers"].append((fresh.encode(), orjson.dumps(base)))
            continue
        if what in ("order_placed", "order_status"):
            product = f"p-{rng.randrange(2000):05d}"
            base.update(type=what, order_id=f"o{i:08d}", total=49.0, currency="EUR",
                        items=[{"product_id": product, "quantity": 1, "price": 49.0}])  # fmt: skip
            if what == "order_status":
                base["status"] = rng.choice(["paid", "shipped", "delivered"])
            out["orders"].append((customer.encode(), orjson.dumps(base)))
            continue
        kind = rng.choices(kinds, weights)[0]
        product = f"p-{rng.randrange(2000):05d}"
        event: dict[str, Any] = {**base, "type": kind, "session_id": f"s-{customer}"}
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
        out["clickstream"].append((customer.encode(), orjson.dumps(event)))
    return out


def ceiling(settings: Settings, total: int, timeout_s: float) -> tuple[float, float]:
    """(steady events/s, wall seconds) of a bare consume + orjson.loads loop."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

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
            [
                TopicPartition(settings.topic(topic), p, OFFSET_BEGINNING)
                for topic in ("clickstream", "orders", "customers")
                for p in range(settings.partitions)
            ]
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
    env: Environment,
    settings: Settings,
    total: int,
    timeout_s: float,
    count: int = 1,
    peaks_mb: list[float] | None = None,
) -> tuple[float, float]:
    """(steady events/s, seconds from spawn to the last event counted) of ``count``
    workers of one app sharing the partitions, their counters summed; with
    ``peaks_mb``, each worker's peak resident memory is appended to it."""
    instances = [settings] + [
        settings.model_copy(update={"web_port": free_port()}) for _ in range(count - 1)
    ]
    urls = [f"http://127.0.0.1:{s.web_port}/metrics" for s in instances]
    spawned = time.perf_counter()
    procs = [
        env.spawn("worker", s, f"worker-{settings.app_id}-{n}.log") for n, s in enumerate(instances)
    ]
    try:
        samples: list[tuple[float, float]] = []

        def done() -> bool:
            counted = 0.0
            for url in urls:
                status, text = http_get(url)
                if status != 200:
                    return False
                # The storefront's records only: the worker's own internal topics
                # (product-interest, say) are work it does for them, not extra input.
                counted += sum(
                    metric(text, "nudge_events_total", topic=settings.topic(name))
                    for name in INPUT_TOPICS
                )
            samples.append((time.perf_counter(), counted))
            return samples[-1][1] >= total

        wait_for(done, f"workers to count {total} events", timeout_s, procs, interval_s=0.2)
        if peaks_mb is not None:
            peaks_mb.extend(memory_mb(proc.pid, "VmHWM") for proc in procs)
        return steady_rate(samples, total), samples[-1][0] - spawned
    finally:
        for proc in procs:
            env.stop(proc)


def stream_arguments(description: str, timeout_s: float) -> argparse.ArgumentParser:
    """The options every stream benchmark takes."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=timeout_s, help="per measurement, s")
    return parser


def prepared(
    env: Environment,
    records: dict[str, list[tuple[bytes, bytes]]],
    definitions: list[dict[str, Any]],
    partitions: int,
) -> tuple[Settings, int]:
    """A fresh topic prefix with its topics and flows, and ``records`` produced up front;
    the settings and how many records."""
    settings = env.settings("stream", partitions=partitions)
    create_topics(settings)
    publish_definitions(settings.kafka_bootstrap, settings.topic("trigger-config"), definitions)
    produced = sum(
        produce_all(settings.kafka_bootstrap, settings.topic(topic), batch)
        for topic, batch in records.items()
    )
    return settings, produced


def main() -> None:
    parser = stream_arguments(__doc__ or "", 180.0)
    parser.add_argument(
        "--clicks-only", action="store_true", help="clickstream events only (no orders, sign-ups)"
    )
    args = parser.parse_args()

    rates: dict[str, list[float]] = {"four kinds": [], "standard flows": []}
    per_event: dict[str, list[float]] = {"four kinds": [], "standard flows": []}
    ceiling_rates: list[float] = []
    rows: list[list[object]] = []
    configurations = {"four kinds": TRIGGERS, "standard flows": standard_flows()}
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            records = events(args.events, args.customers, seed=repeat, clicks_only=args.clicks_only)
            row: list[object] = [repeat]
            for name, definitions in configurations.items():
                settings, produced = prepared(env, records, definitions, args.partitions)
                if name == "four kinds":
                    c_rate, _ = ceiling(settings, produced, args.timeout)
                    ceiling_rates.append(c_rate)
                w_rate, w_wall = worker(env, settings, produced, args.timeout)
                rates[name].append(w_rate)
                row.append(f"{w_rate:,.0f}")
                changelog = f"{settings.topic_prefix}{settings.app_id}-customer-state-changelog"
                per_event[name].append(topic_totals(env.bootstrap, changelog)[1] / produced)
                say(
                    f"repeat {repeat}, {name}: {w_rate:,.0f} events/s (spawn to last event "
                    f"{w_wall:.1f}s)"
                )
            row.append(f"{ceiling_rates[-1]:,.0f}")
            rows.append(row)
            say(f"repeat {repeat}: ceiling {ceiling_rates[-1]:,.0f} events/s")

    c_med = median(ceiling_rates)
    say()
    mix = "clicks" if args.clicks_only else "clicks, orders, statuses, sign-ups"
    say(
        f"{args.events:,} events ({mix}) over "
        f"{args.customers:,} customers, {args.partitions} partitions; {args.repeats} "
        f"repeats; {machine()}"
    )
    say(
        markdown_table(
            ["repeat", "four kinds events/s", "standard flows events/s", "ceiling events/s"],
            rows,
        )
    )
    say()
    table = []
    for name, measured in rates.items():
        med = median(measured)
        table.append(
            [
                f"nudge worker, {name} (1 process)",
                f"{med:,.0f}",
                f"{med / c_med:.1%}",
                f"{TARGET_EVENTS_S:,.0f}",
                "yes" if med >= TARGET_EVENTS_S else "no",
            ]
        )
    table.append(["ceiling: confluent-kafka consume + orjson", f"{c_med:,.0f}", "100%", "", ""])
    say(
        markdown_table(
            ["measure", "median events/s", "vs ceiling", "target", "meets target"], table
        )
    )
    four, standard = median(rates["four kinds"]), median(rates["standard flows"])
    say(f"standard flows / four kinds: {standard / four:.1%}")
    say(
        "customer-state changelog bytes per input event (median): "
        + ", ".join(f"{name} {median(values):,.0f}" for name, values in per_event.items())
    )


if __name__ == "__main__":
    main()
