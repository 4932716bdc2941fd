"""``nudge import catalog | customers | orders``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from nudge.cli.settings import checked_settings
from nudge.errors import NudgeError


def _fail_on_delivery(failed: int, first_error: str) -> None:
    if failed:
        raise click.ClickException(f"{failed} record(s) not delivered: {first_error}")


def _tabular_file(command: Callable[..., None]) -> Callable[..., None]:
    """The PATH argument and --format option every row import takes."""
    command = click.option(
        "--format",
        "fmt",
        type=click.Choice(["csv", "jsonl"]),
        default=None,
        help="Default: from the file extension.",
    )(command)
    return click.argument("path", type=click.Path(dir_okay=False, path_type=Path))(command)


@click.group("import")
def import_group() -> None:
    """Import catalogue feeds, customer lists and order history."""


@import_group.command("catalog")
@click.argument("source")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "yml", "google"]),
    default="auto",
    help="Feed format; auto reads the root element.",
)
@click.option("--every", default=None, help="Re-import on a schedule: 1h, 30m, PT1H.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Reject file (default: ./<source>.rejects.jsonl).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def catalog(
    source: str, fmt: str, every: str | None, rejects: Path | None, no_progress: bool
) -> None:
    """Import a YML or Google Merchant feed (PATH or http(s) URL) into `catalog`.

    Only products that changed since the last import of SOURCE are produced; price
    drops and returns to stock also go to `catalog-changes`.
    """
    from nudge.imports.catalog import import_catalog
    from nudge.imports.every import parse_every, run_every
    from nudge.imports.rejects import default_rejects_path

    try:
        interval = parse_every(every) if every else None
    except NudgeError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from None
    rejects_path = rejects or default_rejects_path(source)

    def once() -> None:
        summary = import_catalog(
            checked_settings(), source, fmt=fmt, rejects=rejects_path, progress=not no_progress
        )
        click.echo(f"catalog: {summary.line()}")
        if summary.rejected:
            click.echo(f"rejects: {rejects_path}")
        _fail_on_delivery(summary.failed, summary.first_error)

    if interval is None:
        try:
            once()
        except NudgeError as exc:
            raise click.ClickException(str(exc)) from None
        return

    def report(exc: Exception) -> None:
        if not isinstance(exc, NudgeError | click.ClickException):
            raise exc
        click.echo(f"error: {exc}", err=True)

    try:
        run_every(interval, once, report)
    except KeyboardInterrupt:
        click.echo("stopped")


@import_group.command("customers")
@_tabular_file
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="DEST=SRC",
    help="Read field DEST from column SRC (repeatable).",
)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--tag", "tags", multiple=True, help="Tag every imported customer (repeatable).")
@click.option(
    "--existing",
    is_flag=True,
    help="Customers the shop already has: marked historical, they start no flow (no welcome).",
)
@click.option("--no-progress", is_flag=True)
def customers(
    path: Path,
    fmt: str | None,
    maps: tuple[str, ...],
    rejects: Path | None,
    tags: tuple[str, ...],
    existing: bool,
    no_progress: bool,
) -> None:
    """Import customers (CSV or JSONL) as upserts on `customers`."""
    from nudge.imports.customers import FIELDS, customer_event
    from nudge.imports.rejects import default_rejects_path
    from nudge.imports.rows import import_rows
    from nudge.imports.tabular import guess_format, parse_mapping

    try:
        mapping = parse_mapping(maps, FIELDS)
        ts = int(time.time() * 1000)
        summary = import_rows(
            checked_settings(),
            path,
            guess_format(path, fmt),
            "customers",
            lambda data: customer_event(data, mapping, tags, ts, historical=existing),
            rejects=rejects or default_rejects_path(str(path)),
            progress=not no_progress,
        )
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"customers: {summary.line()}")
    _fail_on_delivery(summary.failed, summary.first_error)


@import_group.command("orders")
@_tabular_file
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--currency", default="", help="Currency of rows without one (ISO 4217).")
@click.option("--no-progress", is_flag=True)
def orders(
    path: Path, fmt: str | None, rejects: Path | None, currency: str, no_progress: bool
) -> None:
    """Import historical orders (CSV with an `items` JSON column, or JSONL) to `orders`."""
    from nudge.imports.orders import order_event
    from nudge.imports.rejects import default_rejects_path
    from nudge.imports.rows import import_rows
    from nudge.imports.tabular import guess_format

    try:
        summary = import_rows(
            checked_settings(),
            path,
            guess_format(path, fmt),
            "orders",
            lambda data: order_event(data, currency),
            rejects=rejects or default_rejects_path(str(path)),
            progress=not no_progress,
        )
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"orders: {summary.line()}")
    _fail_on_delivery(summary.failed, summary.first_error)
