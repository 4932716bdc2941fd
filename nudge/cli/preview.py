"""``nudge preview``: look at the built-in emails as a reader would."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from nudge.cli.settings import checked_settings
from nudge.models.message import BUILT_IN_TEMPLATES


def _describe(report: object) -> None:
    from nudge.preview import Report

    assert isinstance(report, Report)
    sizes = "  ".join(
        f"{w}: {m.scroll_width}x{m.scroll_height}" for w, m in sorted(report.measures.items())
    )
    click.echo(f"{'ok' if report.ok else 'FAIL':4} {report.sample.name:24} {sizes}")
    for problem in report.problems:
        click.echo(f"     {problem}")


@click.command("preview")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".nudge/preview"),
    show_default=True,
    help="Folder for the HTML files and screenshots.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(BUILT_IN_TEMPLATES),
    help="Only this template (repeatable); default: all of them.",
)
@click.option(
    "--jobs",
    type=int,
    default=min(3, os.cpu_count() or 1),
    show_default=True,
    help="Chromiums running at once.",
)
@click.option("--chromium", "binary", default=None, help="The browser (default: chromium on PATH).")
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds one Chromium run may take.",
)
def preview_command(
    out: Path, kinds: tuple[str, ...], jobs: int, binary: str | None, timeout: float
) -> None:
    """Render every built-in email for a sample shopper; screenshot it at 700 and 375 px.

    Writes OUT/<template>-<step>.html and .png files, and fails, naming them, if any
    email is wider than a 375 px phone screen or shows a picture that did not load.
    """
    from nudge.preview import find_chromium, preview

    found = find_chromium(binary)
    if found is None:
        raise click.ClickException(
            f"no Chromium found ({binary or 'chromium'}): install it (Debian: apt-get install "
            "chromium) or name it with --chromium"
        )
    reports = preview(
        checked_settings(),
        out,
        found,
        now_ms=int(time.time() * 1000),
        kinds=kinds,
        jobs=jobs,
        timeout_s=timeout,
        on_done=_describe,
    )
    click.echo(f"{len(reports)} emails in {out.resolve()}")
    failed = [r.sample.name for r in reports if not r.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} email(s) failed: {', '.join(failed)}")
