"""Trigger latency under steady load: from due time to the SMTP server's accept.

Per repeat: a fresh topic prefix; one ``abandoned_cart`` trigger (delay ``--delay``);
profiles of ``--carts`` subscribed customers; a stream worker and a delivery worker as
child processes and nudge's aiosmtpd MailCatcher in a third. Then a steady background
of product views (``--rate``/s from other customers, which arm nothing) while the cart
customers each add one item, spread evenly over ``--duration`` seconds.

Each email's due time is its command id's episode (the cart_add ts) + delay; its accept
time is the catcher's file-name timestamp. The same run's send commands split the
latency into stages: due -> command created (stream worker, woken at the due time) and
command created -> accepted (Kafka, delivery worker, SMTP).

    python benchmarks/trigger_latency.py [--carts 300] [--rate 800] [--duration 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    Environment,
    accepted_files,
    environment,
    http_get,
    machine,
    markdown_table,
    median,
    metric,
    percentile,
    produce_all,
    say,
    start_mail_catcher,
    wait_for,
)

from nudge.cli.triggers import publish_definitions
from nudge.delivery.sent_messages import message_ref
from nudge.models.commands import SendCommand
from nudge.settings import Settings
from nudge.topics import create_topics

TARGET_P99_S = 0.1  # issue 10
TRIGGER_ID = "bench-cart"
WARMUP_S = 3.0


def customers(ids: list[str]) -> list[tuple[bytes, bytes]]:
    now = int(time.time() * 1000)
    return [
        (
            cid.encode(),
            orjson.dumps(
                {
                    "event_id": f"profile-{cid}",
                    "customer_id": cid,
                    "ts": now,
                    "email": f"{cid}@example.com",
                    "first_name": f"Shopper {cid}",
                    "consent": {"email": "subscribed"},
                }
            ),
        )
        for cid in ids
    ]


def play_load(
    settings: Settings, carts: list[str], rate: float, duration_s: float, seed: int
) -> None:
    """Background product views at ``rate``/s; one cart_add per cart customer, spread out."""
    from confluent_kafka import Producer

    from nudge.kafka import producer_config

    rng = random.Random(seed)
    producer = Producer(producer_config(settings.kafka_bootstrap))
    topic = settings.topic("clickstream")
    total_s = WARMUP_S + duration_s
    cart_at = [WARMUP_S + duration_s * (i + 0.5) / len(carts) for i in range(len(carts))]
    background = int(rate * total_s)
    sent_bg = sent_carts = 0
    started = time.perf_counter()
    while sent_bg < background or sent_carts < len(carts):
        elapsed = time.perf_counter() - started
        while sent_bg < background and sent_bg < rate * elapsed:
            cid = f"b{rng.randrange(10_000):05d}"
            event = {
                "event_id": f"bg-{seed}-{sent_bg}",
                "type": "product_view",
                "customer_id": cid,
                "ts": int(time.time() * 1000),
                "product_id": f"p-{rng.randrange(2000):05d}",
                "category_id": f"cat-{rng.randrange(40):02d}",
            }
            producer.produce(topic, key=cid.encode(), value=orjson.dumps(event))
            sent_bg += 1
        while sent_carts < len(carts) and cart_at[sent_carts] <= elapsed:
            cid = carts[sent_carts]
            event = {
                "event_id": f"cart-{cid}",
                "type": "cart_add",
                "customer_id": cid,
                "ts": int(time.time() * 1000),
                "product_id": f"p-{rng.randrange(2000):05d}",
                "quantity": 1,
                "price": 49.99,
            }
            producer.produce(topic, key=cid.encode(), value=orjson.dumps(event))
            sent_carts += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)


def read_commands(settings: Settings, expected: int, timeout_s: float) -> dict[str, SendCommand]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.app_id}-reader",
            "enable.auto.commit": False,
        }
    )
    topic = settings.topic("send-commands")
    consumer.assign(
        [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)]
    )
    commands: dict[str, SendCommand] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(commands) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    command = SendCommand.from_bytes(message.value() or b"")
                    commands[command.id] = command
    finally:
        consumer.close()
    return commands


def one_run(env: Environment, args: argparse.Namespace, repeat: int) -> dict[str, Any]:
    folder = env.scratch / f"mail-{repeat}"
    catcher, smtp_port = start_mail_catcher(env, folder)
    settings = env.settings("latency", smtp_port=smtp_port, smtp_host="127.0.0.1")
    delay_ms = int(args.delay * 1000)
    carts = [f"k{repeat}x{i:05d}" for i in range(args.carts)]
    create_topics(settings)
    trigger = {"id": TRIGGER_ID, "kind": "abandoned_cart", "delay": args.delay}
    publish_definitions(settings.kafka_bootstrap, settings.topic("trigger-config"), [trigger])
    produce_all(settings.kafka_bootstrap, settings.topic("customers"), customers(carts))
    worker = env.spawn("worker", settings, f"worker-{repeat}.log")
    deliver = env.spawn("deliver", settings, f"deliver-{repeat}.log")
    try:
        base = f"http://127.0.0.1:{settings.web_port}"

        def profiles_in() -> bool:
            status, text = http_get(f"{base}/metrics")
            seen = metric(text, "nudge_events_total", topic=settings.topic("customers"))
            return status == 200 and seen >= len(carts) and http_get(f"{base}/health")[0] == 200

        children = [worker, deliver, catcher]
        wait_for(profiles_in, "worker ready with profiles", 120, children, interval_s=0.5)
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{settings.delivery_web_port}/health")[0] == 200,
            "delivery worker ready",
            60,
            children,
            interval_s=0.5,
        )
        play_load(settings, carts, args.rate, args.duration, seed=repeat)
        wait_for(
            lambda: len(list(folder.glob("*.eml"))) >= len(carts),
            f"{len(carts)} emails",
            args.delay + 60,
            children,
            interval_s=0.2,
        )
        time.sleep(1.0)  # anything extra (a duplicate) would land now
        _, text = http_get(f"{base}/metrics")
        lag_sum = metric(text, "nudge_timer_lag_seconds_sum")
        lag_count = metric(text, "nudge_timer_lag_seconds_count")
    finally:
        env.stop(deliver)
        env.stop(worker)
        env.stop(catcher)
    commands = read_commands(settings, len(carts), 15)
    by_ref = {message_ref(cid, settings.secret_key): cid for cid in commands}
    return measure(folder, commands, by_ref, set(carts), delay_ms) | {
        "worker_lag_mean_s": lag_sum / lag_count if lag_count else float("nan")
    }


def measure(
    folder: Path,
    commands: dict[str, SendCommand],
    by_ref: dict[str, str],
    carts: set[str],
    delay_ms: int,
) -> dict[str, Any]:
    total: list[float] = []
    stream: list[float] = []
    delivery: list[float] = []
    ids: set[str] = set()
    files = accepted_files(folder)
    for accepted, path in files:
        msg: Any = message_from_bytes(path.read_bytes(), policy=policy.default)
        # A mail names its command only by the opaque X-Nudge-Ref; the commands read
        # from send-commands map it back. One whose command was not read is not matched.
        command_id = by_ref.get(str(msg["X-Nudge-Ref"]))
        if command_id is None:
            continue
        trigger_id, customer_id, episode, step = command_id.split(":")
        if trigger_id != TRIGGER_ID or step != "0" or customer_id not in carts:
            continue
        if command_id in ids:
            continue  # a duplicate: counted below
        ids.add(command_id)
        due_s = (int(episode) + delay_ms) / 1000
        total.append(accepted - due_s)
        command = commands.get(command_id)
        if command is not None:
            stream.append((command.created_ms - command.due_ms) / 1000)
            delivery.append(accepted - command.created_ms / 1000)
    return {
        "matched": len(total),
        "expected": len(carts),
        "files": len(files),
        "p50": percentile(total, 50),
        "p99": percentile(total, 99),
        "max": max(total, default=float("nan")),
        "stream_p50": percentile(stream, 50),
        "stream_p99": percentile(stream, 99),
        "delivery_p50": percentile(delivery, 50),
        "delivery_p99": percentile(delivery, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carts", type=int, default=300, help="cart customers (emails)")
    parser.add_argument("--rate", type=float, default=800.0, help="background events/s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--delay", type=float, default=5.0, help="trigger delay, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            r = one_run(env, args, repeat)
            results.append(r)
            say(
                f"repeat {repeat}: {r['matched']}/{r['expected']} emails matched "
                f"({r['files']} files); due->accepted p50 {r['p50']:.3f}s p99 {r['p99']:.3f}s "
                f"max {r['max']:.3f}s; due->command p50 {r['stream_p50']:.3f}s "
                f"p99 {r['stream_p99']:.3f}s; command->accepted p50 {r['delivery_p50']:.3f}s "
                f"p99 {r['delivery_p99']:.3f}s; worker timer-lag mean "
                f"{r['worker_lag_mean_s']:.3f}s"
            )

    def med(key: str) -> float:
        return median([r[key] for r in results])

    say()
    say(
        f"{args.carts} abandoned carts over {args.duration:.0f}s, trigger delay "
        f"{args.delay:g}s, background {args.rate:.0f} product views/s; {args.repeats} repeats; "
        f"{machine()}"
    )
    say(
        markdown_table(
            ["repeat", "matched", "p50 (s)", "p99 (s)", "max (s)"],
            [
                [
                    i,
                    f"{r['matched']}/{r['expected']}",
                    f"{r['p50']:.3f}",
                    f"{r['p99']:.3f}",
                    f"{r['max']:.3f}",
                ]
                for i, r in enumerate(results, 1)
            ],
        )
    )
    say()
    p99 = med("p99")
    say(
        markdown_table(
            ["stage (median over repeats)", "p50 (s)", "p99 (s)", "target", "meets target"],
            [
                [
                    "due -> SMTP accepted (end to end)",
                    f"{med('p50'):.3f}",
                    f"{p99:.3f}",
                    f"p99 <= {TARGET_P99_S:g} s",
                    "yes" if p99 <= TARGET_P99_S else "no",
                ],
                [
                    "due -> send command (stream worker)",
                    f"{med('stream_p50'):.3f}",
                    f"{med('stream_p99'):.3f}",
                    "",
                    "",
                ],
                [
                    "send command -> SMTP accepted (Kafka + delivery)",
                    f"{med('delivery_p50'):.3f}",
                    f"{med('delivery_p99'):.3f}",
                    "",
                    "",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
