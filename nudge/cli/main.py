"""``nudge worker | deliver | dev | triggers apply | topics create | promo | import``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from pathlib import Path

import click

from imports.cli import import_group
from nudge.cli.promo import promo_group
from nudge.errors import ConfigError, NudgeError
from nudge.settings import Settings
from recommender.cli import model_group, recommend_command, train_command
from recommender.evaluate_cli import evaluate_command


def _settings(*, signs_links: bool = False) -> Settings:
    from nudge.settings import DEV_SECRET

    settings = Settings()
    if signs_links and settings.secret_key.get_secret_value() == DEV_SECRET:
        click.echo(
            "warning: NUDGE_SECRET_KEY is the development default; links are forgeable",
            err=True,
        )
    return settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@click.group()
@click.version_option(package_name="nudge")
def main() -> None:
    """nudge: real-time personalisation for e-commerce."""


@main.command()
def worker() -> None:
    """Run a stream worker: detection, timers, the unsubscribe endpoint."""
    from faust import Worker as FaustWorker

    from nudge.embedded import ensure_redis
    from nudge.topics import create_topics
    from streams.app import create_app

    settings = _settings(signs_links=True)
    redis_url, _server = ensure_redis(settings.redis_url)
    settings = settings.model_copy(update={"redis_url": redis_url})
    create_topics(settings)
    # Every customer's state lives in memory as long-lived objects; with the default
    # thresholds the cyclic collector rescans them all over and over (measured: about
    # 12% of throughput). Garbage here is almost all freed by reference counting.
    gc.set_threshold(100_000, 50, 1000)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    built = create_app(settings)
    faust_worker = FaustWorker(built.app, loglevel=settings.log_level.upper(), quiet=True)
    # Faust's progress spinner lowers the root logger to DEBUG so that it spins on
    # every record: every debug call in aiokafka then builds a LogRecord.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()


@main.command()
def deliver() -> None:
    """Run the delivery worker: render, check consent, send, report."""
    from delivery.service import run_delivery
    from nudge.embedded import ensure_redis
    from nudge.topics import create_topics
    from nudge.trigger_registry import TriggerFeed, TriggerRegistry

    settings = _settings(signs_links=True)
    _configure_logging(settings.log_level)
    redis_url, _server = ensure_redis(settings.redis_url)
    settings = settings.model_copy(update={"redis_url": redis_url})
    create_topics(settings)

    async def run() -> None:
        registry = TriggerRegistry()
        feed = TriggerFeed(
            registry,
            settings.kafka_bootstrap,
            settings.topic("trigger-config"),
            settings.topic("flow-versions"),
        )
        feed_task = asyncio.create_task(feed.run())
        await registry.ready.wait()
        try:
            await run_delivery(settings, triggers=registry)
        finally:
            feed_task.cancel()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except NudgeError as exc:  # e.g. a model that fails its checks: refuse to start
        raise click.ClickException(str(exc)) from None


@main.group()
def triggers() -> None:
    """Manage flow definitions (flows, and the abandonment shorthand)."""


@triggers.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Validate only: publish nothing.")
def triggers_apply(path: Path, check: bool) -> None:
    """Validate the flows in PATH (YAML or JSON) and publish them to trigger-config.

    Every problem in the file is reported with its path; if there is any, nothing
    is published.
    """
    from redis.exceptions import RedisError

    from nudge.cli.triggers import (
        load_definitions,
        missing_pools,
        promo_pools,
        publish_definitions,
    )

    try:
        definitions = load_definitions(path)
        pools = promo_pools(definitions)
        if pools:
            settings = Settings()
            try:
                unknown = asyncio.run(
                    missing_pools(
                        settings.redis_url or "redis://127.0.0.1:6379/0",
                        settings.redis_namespace,
                        pools,
                    )
                )
            except (OSError, RedisError) as exc:
                raise ConfigError(
                    f"cannot check promo pools: Redis at NUDGE_REDIS_URL unreachable ({exc})"
                ) from None
            if unknown:
                raise ConfigError("\n".join(f"{path}: {line}" for line in unknown))
        if not check:
            settings = _settings()
            topic = settings.topic("trigger-config")
            publish_definitions(settings.kafka_bootstrap, topic, definitions)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "valid" if check else "applied"
    for definition in definitions:
        state = "enabled" if definition.get("enabled", True) else "disabled"
        click.echo(f"{verb} {definition['id']} ({definition.get('kind', 'flow')}, {state})")


@triggers.command("schema")
def triggers_schema() -> None:
    """Print the JSON Schema of a definition (also in schemas/flow.schema.json)."""
    from flows.schema import flow_json_schema_text

    click.echo(flow_json_schema_text(), nl=False)


@main.group()
def topics() -> None:
    """Manage Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic nudge uses, with the configured partitions."""
    from nudge.topics import create_topics

    for name, outcome in create_topics(_settings()).items():
        click.echo(f"{outcome:8} {name}")


@main.command()
@click.option("--demo", is_flag=True, help="Also play a synthetic storefront.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for caught emails (default: .nudge/outbox).",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--speed", type=float, default=1.0, help="Demo shopper speed multiplier.")
def dev(demo: bool, outbox: Path | None, duration: float | None, speed: float) -> None:
    """Everything on this machine: broker, Redis, mail catcher, workers, triggers."""
    from nudge.cli.dev import run_dev

    settings = _settings()
    try:
        sys.exit(run_dev(settings, demo=demo, outbox=outbox, duration=duration, speed=speed))
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(import_group)
main.add_command(promo_group)
main.add_command(train_command)
main.add_command(recommend_command)
main.add_command(model_group)
main.add_command(evaluate_command)
