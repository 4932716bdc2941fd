"""Every built-in email, rendered as sent, in a real headless Chromium at 700 and 375 px.

The screenshots stay in ``.nudge/screenshots/`` (printed; run with ``-s`` to see it) to
be looked at; what is asserted is that no email is wider than a 375 px phone and that
every picture loaded, and that the measuring catches a mail that is too wide.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.preview import (
    PHONE,
    WIDTHS,
    Chromium,
    Sample,
    built_in_steps,
    find_chromium,
    judge,
    preview,
    shoot,
)
from nudge.preview.chromium import Measure
from nudge.settings import Settings

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary on PATH (Debian: apt-get install chromium)"
)
ARTEFACTS = Path(__file__).resolve().parents[1] / ".nudge" / "screenshots"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _mail(body: str) -> str:
    return (
        '<!doctype html><html><head><meta name="viewport" content="width=device-width">'
        f'</head><body style="margin:0">{body}</body></html>'
    )


@needs_chromium
def test_every_built_in_email_fits_a_phone_and_shows_its_pictures() -> None:
    assert CHROMIUM is not None
    started = time.monotonic()
    reports = preview(Settings(), ARTEFACTS, CHROMIUM, now_ms=int(time.time() * 1000), jobs=2)
    took = time.monotonic() - started
    print(f"\nscreenshots of {len(reports)} emails in {ARTEFACTS} ({took:.0f}s)")

    assert {r.sample.name for r in reports} == {f"{k}-{s}" for k, s in built_in_steps()}
    problems = {r.sample.name: r.problems for r in reports if r.problems}
    assert problems == {}
    for report in reports:
        phone = report.measures[PHONE]
        assert phone.scroll_width <= PHONE, report.sample.name
        assert phone.scroll_height > 200, f"{report.sample.name}: an empty mail?"
        for width in WIDTHS:
            shot_w, shot_h = _png_size(report.screenshots[width])
            assert shot_w == width
            assert shot_h == min(report.measures[width].scroll_height, 5000)


@needs_chromium
def test_a_600_px_mail_is_reported_too_wide_for_a_phone(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    fixed = _mail('<table width="600" style="width:600px"><tr><td>Wide</td></tr></table>')
    fluid = _mail(
        '<table width="600" style="max-width:600px;width:100%"><tr><td>Fluid</td></tr></table>'
    )
    chromium = Chromium(CHROMIUM, tmp_path)

    wide = chromium.measure(fixed, WIDTHS)
    assert wide[PHONE].scroll_width == 600 and wide[PHONE].overflows
    assert not wide[700].overflows
    assert "table" in wide[PHONE].culprit
    assert not chromium.measure(fluid, WIDTHS)[PHONE].overflows

    reports = shoot(
        [Sample("too_wide", 0, "Wide", fixed), Sample("fluid", 0, "Fluid", fluid)],
        tmp_path / "out",
        chromium,
    )
    by_name = {r.sample.name: r for r in reports}
    assert not by_name["too_wide-0"].ok
    assert by_name["too_wide-0"].problems[0].startswith("overflows a 375 px screen: 600 px wide")
    assert by_name["fluid-0"].ok
    assert _png_size(by_name["too_wide-0"].screenshots[PHONE])[0] == PHONE


@needs_chromium
def test_a_picture_that_does_not_load_is_reported(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    missing = (tmp_path / "nowhere.png").as_uri()
    measures = Chromium(CHROMIUM, tmp_path).measure(
        _mail(f'<img src="{missing}" width="96" alt="">'), [PHONE]
    )
    assert measures[PHONE].broken_images == (missing,)
    assert judge(measures) == [f"1 picture(s) did not load: {missing}"]


def test_judge_names_the_width_and_the_culprit() -> None:
    fits = Measure(PHONE, PHONE, 900, (), "")
    too_wide = Measure(PHONE, 412, 900, (), "<table> 412 px wide")
    assert judge({PHONE: fits}) == []
    assert judge({PHONE: too_wide}) == [
        "overflows a 375 px screen: 412 px wide; first to stick out: <table> 412 px wide"
    ]


@needs_chromium
def test_the_command_writes_html_and_both_screenshots(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["preview", "--out", str(tmp_path), "--kind", "double_opt_in", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "ok   double_opt_in-0" in result.output and "ok   double_opt_in-1" in result.output
    for step in (0, 1):
        assert "confirm" in (tmp_path / f"double_opt_in-{step}.html").read_text()
        for width in WIDTHS:
            assert _png_size(tmp_path / f"double_opt_in-{step}-{width}.png")[0] == width


def test_the_command_names_a_missing_chromium(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["preview", "--out", str(tmp_path), "--chromium", str(tmp_path / "no-browser")]
    )
    assert result.exit_code == 1
    assert "no Chromium found" in result.output and "--chromium" in result.output
