"""Emails/s from ``nudge deliver`` next to a bare aiosmtplib loop, same SMTP server.

Per repeat: a fresh topic prefix and Redis namespace (catalogue and popularity seeded
from the demo storefront, consent "subscribed" for every customer), N abandoned-cart
SendCommands produced up front, and nudge's aiosmtpd MailCatcher in a child process.

* nudge: ``python -m nudge deliver`` (render, policy, ledger, SMTP pool, reports);
* bare: as many aiosmtplib connections as nudge's pool (``NUDGE_SMTP_POOL_SIZE``),
  each a sequential ``await smtp.send_message(msg)`` loop over its share of the very
  messages nudge just rendered (parsed back from the catcher's .eml files): the
  ceiling of what that many connections to that server can carry.

Both rates run from the first to the last message the server accepted (file-name
timestamps), so the delivery worker's start-up is not counted.

With ``--dkim`` each repeat also runs ``nudge deliver`` signing every email (a 2048-bit
key generated for the run), in alternating order with the unsigned run.

    python benchmarks/delivery_throughput.py [--emails 2000] [--repeats 3] [--dkim]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from _harness import (
    Environment,
    accepted_files,
    environment,
    http_get,
    machine,
    markdown_table,
    median,
    metric,
    produce_all,
    say,
    start_mail_catcher,
    wait_for,
)

from nudge.cli.triggers import publish_definitions
from nudge.models.commands import SendCommand
from nudge.models.message import MessageContext
from nudge.settings import Settings
from nudge.topics import create_topics

TARGET_RATIO = 0.9  # issue 10: of the same number of bare connections
TRIGGER = {"id": "bench-cart", "kind": "abandoned_cart", "delay": "PT1H"}
LABELS = {
    "nudge": "nudge deliver (1 process)",
    "nudge+dkim": "nudge deliver, DKIM-signing (1 process)",
}


def commands(n: int, catalog: list[dict[str, Any]], seed: int) -> list[SendCommand]:
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    result: list[SendCommand] = []
    for i in range(n):
        cid = f"d{seed}x{i:06d}"
        picked = rng.sample(catalog, 1 + rng.randrange(3))
        items = [
            {"product_id": p["product_id"], "quantity": 1 + rng.randrange(2), "price": p["price"]}
            for p in picked
        ]
        episode = now - 3_600_000
        result.append(
            SendCommand(
                id=f"{TRIGGER['id']}:{cid}:{episode}:0",
                trigger_id=str(TRIGGER["id"]),
                kind="abandoned_cart",
                step=0,
                channel="email",
                customer_id=cid,
                recipient=f"{cid}@example.com",
                context=MessageContext.from_data(
                    {
                        "customer": {
                            "customer_id": cid,
                            "first_name": f"Shopper {i}",
                            "email": f"{cid}@example.com",
                        },
                        "items": items,
                    }
                ),
                due_ms=episode + 3_600_000,
                created_ms=now,
            )
        )
    return result


async def seed_redis(
    settings: Settings, catalog: list[dict[str, Any]], customer_ids: list[str]
) -> None:
    from redis.asyncio import Redis

    from nudge.shared_state import SharedState

    redis = Redis.from_url(settings.redis_url or "")
    try:
        shared = SharedState(redis, settings.redis_namespace)
        await shared.put_products(catalog)
        await shared.bump_popularity({p["product_id"]: float(i) for i, p in enumerate(catalog)})
        pipe = redis.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hset(shared.key("consent", cid), "email", "subscribed")
        await pipe.execute()
        assert await shared.get_consent(customer_ids[0], "email") == "subscribed"
    finally:
        await redis.aclose()


async def bare_loops(port: int, messages: list[EmailMessage], connections: int) -> None:
    import aiosmtplib

    async def loop(share: list[EmailMessage]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await smtp.connect()
        try:
            for msg in share:
                await smtp.send_message(msg)
        finally:
            await smtp.quit()

    await asyncio.gather(*(loop(messages[n::connections]) for n in range(connections)))


def rate(folder: Path) -> tuple[float, int]:
    """(messages/s from first to last accept, count)."""
    times = [t for t, _ in accepted_files(folder)]
    if len(times) < 2 or times[-1] <= times[0]:
        return float("nan"), len(times)
    return (len(times) - 1) / (times[-1] - times[0]), len(times)


def clear(folder: Path) -> None:
    for path in folder.glob("*.eml"):
        path.unlink()


def nudge_run(
    env: Environment,
    args: argparse.Namespace,
    catalog: list[dict[str, Any]],
    run: str,
    seed: int,
    catcher: subprocess.Popen[bytes],
    smtp_port: int,
    folder: Path,
    dkim: dict[str, Any],
) -> tuple[float, int, float]:
    """(emails/s, accepted, metric sent) of one ``nudge deliver`` on a fresh prefix."""
    settings = env.settings("delivery", smtp_host="127.0.0.1", smtp_port=smtp_port, **dkim)
    batch = commands(args.emails, catalog, seed=seed)
    create_topics(settings)
    publish_definitions(settings.kafka_bootstrap, settings.topic("trigger-config"), [TRIGGER])
    asyncio.run(seed_redis(settings, catalog, [c.customer_id for c in batch]))
    produce_all(
        settings.kafka_bootstrap,
        settings.topic("send-commands"),
        ((c.customer_id.encode(), c.to_bytes()) for c in batch),
    )
    deliver = env.spawn("deliver", settings, f"deliver-{run}.log")
    try:
        wait_for(
            lambda: len(list(folder.glob("*.eml"))) >= args.emails,
            f"{args.emails} emails from nudge deliver",
            args.timeout,
            [deliver, catcher],
            interval_s=0.2,
        )
        time.sleep(0.5)
        _, text = http_get(f"http://127.0.0.1:{settings.delivery_web_port}/metrics")
        sent = metric(text, "nudge_delivery_sent_total")
    finally:
        env.stop(deliver)
    n_rate, n_count = rate(folder)
    return n_rate, n_count, sent


def dkim_settings(env: Environment) -> dict[str, Any]:
    """A fresh 2048-bit key for ``--dkim``, and the settings that sign with it."""
    from nudge.delivery.dkim import generate_key, private_key_pem

    key_file = env.scratch / "dkim.pem"
    if not key_file.exists():
        key_file.write_bytes(private_key_pem(generate_key()))
    return {"dkim_domain": "example.com", "dkim_selector": "bench", "dkim_key_file": str(key_file)}


def one_repeat(
    env: Environment,
    args: argparse.Namespace,
    catalog: list[dict[str, Any]],
    repeat: int,
    sizes: list[float],
) -> dict[str, float]:
    """emails/s of nudge deliver (and, with ``--dkim``, of nudge deliver signing) and of
    the bare loop, on fresh prefixes and one SMTP server."""
    folder = env.scratch / f"mail-{repeat}"
    catcher, smtp_port = start_mail_catcher(env, folder)
    variants: list[tuple[str, dict[str, Any]]] = [("nudge", {})]
    if args.dkim:
        variants.append(("nudge+dkim", dkim_settings(env)))
        if repeat % 2 == 0:
            variants.reverse()  # neither always runs first
    rates: dict[str, float] = {}
    messages: list[EmailMessage] = []
    try:
        for n, (name, dkim) in enumerate(variants):
            run = f"{repeat}-{name}"
            seed = repeat * 10 + n
            n_rate, n_count, sent = nudge_run(
                env, args, catalog, run, seed, catcher, smtp_port, folder, dkim
            )
            rates[name] = n_rate
            say(
                f"repeat {repeat}: {name} {n_rate:,.0f} emails/s "
                f"({n_count} accepted, metric sent={sent:.0f})"
            )
            for _, path in accepted_files(folder):
                raw = path.read_bytes()
                if not dkim:
                    sizes.append(len(raw))
                    msg: Any = message_from_bytes(raw, policy=policy.default)
                    messages.append(msg)
            clear(folder)
        asyncio.run(bare_loops(smtp_port, messages, Settings().smtp_pool_size))
        rates["bare"], b_count = rate(folder)
    finally:
        env.stop(catcher)
    say(
        f"repeat {repeat}: bare aiosmtplib {rates['bare']:,.0f} emails/s ({b_count} accepted); "
        + ", ".join(f"{k} {v / rates['bare']:.1%} of it" for k, v in rates.items() if k != "bare")
    )
    return rates


def main() -> None:
    from nudge.demo import demo_catalog

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0, help="per measurement, seconds")
    parser.add_argument(
        "--dkim",
        action="store_true",
        help="also run nudge deliver DKIM-signing every email (a generated 2048-bit key)",
    )
    args = parser.parse_args()

    catalog = demo_catalog(40)
    runs: list[dict[str, float]] = []
    sizes: list[float] = []
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            runs.append(one_repeat(env, args, catalog, repeat, sizes))

    names = [name for name in runs[0] if name != "bare"]
    medians = {name: median([r[name] for r in runs]) for name in [*names, "bare"]}
    say()
    say(
        f"{args.emails:,} abandoned-cart emails (median size {median(sizes) / 1024:.1f} KiB) "
        f"to aiosmtpd in another process; {args.repeats} repeats; {machine()}"
    )
    rows = [
        [
            i,
            *(f"{r[n]:,.0f}" for n in [*names, "bare"]),
            *(f"{r[n] / r['bare']:.1%}" for n in names),
        ]
        for i, r in enumerate(runs, 1)
    ]
    say(
        markdown_table(
            ["repeat", *(f"{n} emails/s" for n in names), "bare loop emails/s"]
            + [f"{n} / bare" for n in names],
            rows,
        )
    )
    say()
    table = [
        [
            LABELS[name],
            f"{medians[name]:,.0f}",
            f"{medians[name] / medians['bare']:.1%}",
            f">= {TARGET_RATIO:.0%} of bare",
            "yes" if medians[name] / medians["bare"] >= TARGET_RATIO else "no",
        ]
        for name in names
    ]
    table.append(
        [
            f"bare aiosmtplib loops ({Settings().smtp_pool_size} connections)",
            f"{medians['bare']:,.0f}",
            "100%",
            "",
            "",
        ]
    )
    say(
        markdown_table(
            ["measure", "median emails/s", "vs bare loop", "target", "meets target"], table
        )
    )
    if "nudge+dkim" in medians:
        say()
        say(
            f"DKIM signing costs {1 - medians['nudge+dkim'] / medians['nudge']:.1%} of nudge's rate"
        )


if __name__ == "__main__":
    main()
