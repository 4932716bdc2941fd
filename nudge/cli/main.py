"""The ``nudge`` command: ``worker``, ``deliver``, ``inbound``, ``dev``, ``triggers apply``,
``topics create``, ``promo``, ``dkim``, ``import``, ``preview`` and the model commands."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from nudge.cli.dkim import dkim_group
from nudge.cli.preview import preview_command
from nudge.cli.promo import promo_group
from nudge.cli.settings import checked_settings
from nudge.errors import ConfigError, NudgeError
from nudge.imports.cli import import_group
from nudge.recommender.cli import model_group, recommend_command, train_command
from nudge.recommender.evaluate_cli import evaluate_command
from nudge.settings import Settings


def _settings() -> Settings:
    return checked_settings()


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
    from nudge.cli.workers import run_worker

    settings = checked_settings(port_setting="web_port", services=True)
    run_worker(settings)


@main.command()
def deliver() -> None:
    """Run the delivery worker: render, check consent, send, report."""
    from nudge.cli.workers import run_deliver

    settings = checked_settings(port_setting="delivery_web_port", services=True, dkim=True)
    _configure_logging(settings.log_level)
    try:
        run_deliver(settings)
    except NudgeError as exc:  # e.g. a model that fails its checks: refuse to start
        raise click.ClickException(str(exc)) from None


@main.command()
def inbound() -> None:
    """Run the inbound SMTP server: bounces, complaints, unsubscribes by email."""
    from nudge.inbound.server import main as run_inbound
    from nudge.startup import StartupError, require_free_port

    settings = checked_settings(services=True)
    try:
        require_free_port(settings.inbound_host, settings.inbound_port, "NUDGE_INBOUND_PORT")
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    _configure_logging(settings.log_level)
    run_inbound(settings)


@main.group()
def triggers() -> None:
    """Manage flow definitions (flows, and the abandonment shorthand)."""


@triggers.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Validate only: publish nothing.")
@click.option(
    "--if-absent",
    is_flag=True,
    help="Publish only the flows whose id trigger-config does not hold yet "
    "(first-time set-up that leaves a marketer's edits alone).",
)
def triggers_apply(path: Path, check: bool, if_absent: bool) -> None:
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
        published_ids,
    )

    try:
        definitions = load_definitions(path)
        pools = promo_pools(definitions)
        if pools:
            settings = _settings()
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
        kept: set[str] = set()
        if not check:
            settings = _settings()
            topic = settings.topic("trigger-config")
            if if_absent:
                kept = published_ids(settings.kafka_bootstrap, topic)
            fresh = [d for d in definitions if d["id"] not in kept]
            if fresh:
                publish_definitions(settings.kafka_bootstrap, topic, fresh)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for definition in definitions:
        verb = "valid" if check else "kept" if definition["id"] in kept else "applied"
        state = "enabled" if definition.get("enabled", True) else "disabled"
        click.echo(f"{verb} {definition['id']} ({definition.get('kind', 'flow')}, {state})")


@triggers.command("schema")
def triggers_schema() -> None:
    """Print the JSON Schema of a definition (also in schemas/flow.schema.json)."""
    from nudge.flows.schema import flow_json_schema_text

    click.echo(flow_json_schema_text(), nl=False)


@main.group()
def topics() -> None:
    """Manage Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic nudge uses, with the configured partitions."""
    from nudge.startup import StartupError, require_broker
    from nudge.topics import create_topics

    settings = _settings()
    try:
        require_broker(settings)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    for name, outcome in create_topics(settings).items():
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
    try:
        from nudge.cli.dev import run_dev
    except ImportError as exc:
        raise click.ClickException(
            f"nudge dev needs the embedded services ({exc.name} is missing): "
            "pip install 'nudge[embedded]'"
        ) from None

    settings = _settings()
    try:
        sys.exit(run_dev(settings, demo=demo, outbox=outbox, duration=duration, speed=speed))
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(import_group)
main.add_command(promo_group)
main.add_command(dkim_group)
main.add_command(train_command)
main.add_command(recommend_command)
main.add_command(model_group)
main.add_command(evaluate_command)
main.add_command(preview_command)
