"""``nudge promo import POOL FILE`` and ``nudge promo generate POOL --count N``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from nudge.cli.settings import checked_settings
from nudge.errors import NudgeError
from nudge.settings import Settings


async def _add(settings: Settings, pool: str, codes: list[str]) -> tuple[int, int, int]:
    from redis.asyncio import Redis

    from nudge.promo import PromoPools

    redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    try:
        pools = PromoPools(redis, settings.redis_namespace)
        added, known = await pools.add(pool, codes)
        return added, known, await pools.available(pool)
    finally:
        await redis.aclose()


@click.group("promo")
def promo_group() -> None:
    """Promo code pools: one code per message, never one code twice."""


@promo_group.command("import")
@click.argument("pool")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def promo_import(pool: str, path: Path) -> None:
    """Load the codes in PATH (one per line, or a CSV's first column) into POOL."""
    from nudge.promo import read_codes
    from nudge.promo.pools import check_pool_name

    try:
        check_pool_name(pool)
        codes, problems = read_codes(path)
        if problems:
            raise click.ClickException(
                f"{path}: nothing imported:\n"
                + "\n".join(problems[:20])
                + (f"\n... and {len(problems) - 20} more" if len(problems) > 20 else "")
            )
        added, known, available = asyncio.run(_add(checked_settings(), pool, codes))
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{pool}: {added} codes added, {known} already known, {available} available")


@promo_group.command("generate")
@click.argument("pool")
@click.option("--count", type=int, required=True, help="How many codes.")
@click.option("--prefix", default="", help="Put before every code, e.g. WELCOME-.")
@click.option("--length", type=int, default=8, show_default=True, help="Random characters.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the codes here too, for the shop's checkout (default: stdout).",
)
def promo_generate(pool: str, count: int, prefix: str, length: int, out: Path | None) -> None:
    """Make COUNT random codes, load them into POOL and list them for the checkout."""
    from nudge.promo import generate_codes
    from nudge.promo.pools import CODE, check_pool_name

    try:
        check_pool_name(pool)
        codes = generate_codes(count, prefix=prefix, length=length)
        if not CODE.match(codes[0]):
            raise click.ClickException(f"bad --prefix {prefix!r}: letters, digits, -, _")
        added, known, available = asyncio.run(_add(checked_settings(), pool, codes))
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    if out is not None:
        out.write_text("\n".join(codes) + "\n", encoding="utf-8")
    else:
        click.echo("\n".join(codes))
    click.echo(
        f"{pool}: {added} codes added, {known} already known, {available} available", err=True
    )
