"""``nudge dev``: the whole service on one machine, with real parts.

Tansu (Kafka protocol), Redis, an aiosmtpd mail catcher writing .eml files, a stream
worker, a delivery worker and the inbound SMTP server (bounces, complaints) as child
processes, and optionally a demo storefront.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import click
from pydantic import SecretStr

from nudge.demo import demo_catalog
from nudge.demo.image_server import ImageServer
from nudge.embedded import EmbeddedBroker, MailCatcher, ensure_redis, free_port
from nudge.embedded.net import is_listening
from nudge.processes import stop_process
from nudge.settings import DEV_SECRET, Settings


def _port(preferred: int) -> int:
    return preferred if not is_listening("127.0.0.1", preferred) else free_port()


def _spawn(command: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(
        [sys.executable, "-m", "nudge", command], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, 10.0)


def run_dev(
    settings: Settings, *, demo: bool, outbox: Path | None, duration: float | None, speed: float
) -> int:
    from nudge.cli.triggers import load_definitions, publish_definitions
    from nudge.demo import DEMO_TRIGGERS_PATH
    from nudge.topics import create_topics

    home = settings.data_dir / "dev"
    home.mkdir(parents=True, exist_ok=True)
    outbox = outbox or settings.data_dir / "outbox"
    broker = EmbeddedBroker(port=_port(9092), log_path=home / "broker.log").start()
    redis_url, redis_server = ensure_redis(settings.redis_url)
    catcher = MailCatcher(outbox, port=_port(1025)).start()
    web_port = _port(settings.web_port)
    secret = settings.secret_key
    if secret.get_secret_value() == DEV_SECRET:
        secret = SecretStr(secrets.token_urlsafe(32))  # links live as long as this session
    settings = settings.model_copy(
        update={
            "secret_key": secret,
            "kafka_bootstrap": broker.bootstrap,
            "redis_url": redis_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": catcher.port,
            "web_port": web_port,
            "public_url": f"http://localhost:{web_port}",
            "delivery_web_port": _port(settings.delivery_web_port),
            "inbound_host": "127.0.0.1",
            "inbound_port": _port(settings.inbound_port),
        }
    )
    if demo and "NUDGE_SMART_SENDING" not in os.environ:
        # The demo's flows run in seconds: a 12-hour window would hide their messages.
        settings = settings.model_copy(update={"smart_sending": 60.0})
    env = {**os.environ, **settings.as_env()}
    # The demo's emails show product pictures that this process serves itself.
    images = ImageServer(demo_catalog(), port=_port(settings.demo_image_port)) if demo else None
    children: list[subprocess.Popen[bytes]] = []
    # SIGTERM (a supervisor, `kill`) stops everything as Ctrl-C does: no orphaned workers.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        create_topics(settings)
        asyncio.run(_fill_demo_pool(settings))
        publish_definitions(
            settings.kafka_bootstrap,
            settings.topic("trigger-config"),
            load_definitions(DEMO_TRIGGERS_PATH),
        )
        if images is not None:
            images.start()
        children = [
            _spawn("worker", env, home / "worker.log"),
            _spawn("deliver", env, home / "deliver.log"),
            _spawn("inbound", env, home / "inbound.log"),
        ]
        click.echo(
            f"broker   {broker.bootstrap}\nredis    {redis_url}\nsmtp     127.0.0.1:{catcher.port}"
        )
        click.echo(f"web      {settings.public_url}/health")
        if images is not None:
            click.echo(f"images   {images.base_url}/")
        click.echo(f"inbound  smtp://127.0.0.1:{settings.inbound_port} (bounces, complaints)")
        click.echo(f"outbox   {outbox.resolve()}\nlogs     {home.resolve()}")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                _watch(settings, catcher, children, images=images, duration=duration, speed=speed)
            )
        return 0 if all(c.poll() is None for c in children) else 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut this short
        started = ["stream worker", "delivery worker", "inbound server"][: len(children)]
        started += ["mail catcher", "broker"] + (["redis"] if redis_server is not None else [])
        started += ["image server"] if images is not None else []
        click.echo(f"stopping {', '.join(started)}...", err=True)
        for child in children:
            _stop(child)
        catcher.stop()
        broker.stop()
        if redis_server is not None:
            redis_server.stop()
        if images is not None:
            images.stop()
        click.echo("stopped.", err=True)


#: The promo pool the demo's welcome flow draws from.
DEMO_POOL = "DEMO10"


async def _fill_demo_pool(settings: Settings) -> None:
    from redis.asyncio import Redis

    from nudge.promo import PromoPools, generate_codes

    redis = Redis.from_url(settings.redis_url or "")
    try:
        pools = PromoPools(redis, settings.redis_namespace)
        if await pools.available(DEMO_POOL) < 100:
            await pools.add(DEMO_POOL, generate_codes(500, prefix="DEMO-"))
    finally:
        await redis.aclose()


async def _watch(
    settings: Settings,
    catcher: MailCatcher,
    children: list[subprocess.Popen[bytes]],
    *,
    images: ImageServer | None,
    duration: float | None,
    speed: float,
) -> None:
    stop = asyncio.Event()
    # Here SIGTERM ends the watch like its duration does: raised as an interrupt in
    # whatever task runs, it would cut that task short and print its traceback.
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    playing = " Playing the demo storefront..." if images is not None else ""
    click.echo("Ctrl-C stops everything." + playing)
    tasks = [asyncio.create_task(_print_mail(catcher, stop))]
    if images is not None:
        tasks.append(asyncio.create_task(_play(settings, stop, speed, images.base_url)))
    started = time.monotonic()
    try:
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            dead = [c for c in children if c.poll() is not None]
            if dead:
                click.echo(f"a worker exited (code {dead[0].returncode}); see the logs", err=True)
                break
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _interrupt)


async def _print_mail(catcher: MailCatcher, stop: asyncio.Event) -> None:
    seen: set[Path] = set(catcher.paths())
    while not stop.is_set():
        for path in catcher.paths():
            if path not in seen:
                seen.add(path)
                msg = message_from_bytes(path.read_bytes(), policy=policy.default)
                click.echo(f"mail  to={msg['To']}  subject={msg['Subject']!s}  file={path.name}")
        await asyncio.sleep(0.5)


async def _play(settings: Settings, stop: asyncio.Event, speed: float, image_base: str) -> None:
    from confluent_kafka import Producer

    from nudge.demo import demo_catalog, demo_customers, play, publish_reference_data
    from nudge.kafka import producer_config

    producer = Producer(producer_config(settings.kafka_bootstrap))

    async def send(topic: str, key: bytes, value: bytes) -> None:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)

    catalog, customers = demo_catalog(image_base=image_base), demo_customers(12)
    await publish_reference_data(send, settings=settings, customers=customers, catalog=catalog)
    producer.flush(10)
    await asyncio.sleep(2)  # let profiles land before the first shopper acts
    try:
        await play(
            send,
            settings=settings,
            customers=customers,
            catalog=catalog,
            speed=speed,
            stop_event=stop,
        )
    finally:
        producer.flush(10)
