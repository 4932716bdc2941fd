"""Measure and photograph rendered emails at a phone's and a desktop's width.

``judge`` is the decision (pure): a mail wider than its frame, or with a picture that
did not load, has a problem. ``shoot`` is the glue: it writes each sample's HTML,
measures it in Chromium, then takes one screenshot per width, a few at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nudge.preview.chromium import Chromium, ChromiumFailed, Measure
from nudge.preview.samples import Sample

#: The narrowest phone in common use (iPhone SE, mini) and a desktop reading pane.
PHONE, DESKTOP = 375, 700
WIDTHS = (DESKTOP, PHONE)
#: Taller screenshots are cut here: nobody scrolls that far, and the file stays small.
MAX_HEIGHT = 5000


@dataclass(slots=True)
class Report:
    """One sample: its files, its sizes per width, and what is wrong with it."""

    sample: Sample
    html_path: Path
    screenshots: dict[int, Path] = field(default_factory=dict)
    measures: dict[int, Measure] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(measures: Mapping[int, Measure]) -> list[str]:
    """What a reader would see go wrong: a mail that scrolls sideways, broken pictures."""
    problems = []
    for width in sorted(measures):
        m = measures[width]
        if m.overflows:
            where = f"; first to stick out: {m.culprit}" if m.culprit else ""
            problems.append(f"overflows a {width} px screen: {m.scroll_width} px wide{where}")
    broken = sorted({src for m in measures.values() for src in m.broken_images})
    if broken:
        problems.append(f"{len(broken)} picture(s) did not load: {', '.join(broken[:3])}")
    return problems


def shoot(
    samples: Iterable[Sample],
    out: Path,
    chromium: Chromium,
    *,
    widths: Sequence[int] = WIDTHS,
    jobs: int = 3,
    on_done: Callable[[Report], None] | None = None,
) -> list[Report]:
    """``<out>/<name>.html`` and ``<out>/<name>-<width>.png`` for every sample; each
    report says what is wrong (``judge``), or why Chromium could not tell."""
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for sample in samples:
        path = out / f"{sample.name}.html"
        path.write_text(sample.html, encoding="utf-8")
        reports.append(Report(sample, path))

    def one(report: Report) -> Report:
        try:
            report.measures = chromium.measure(report.sample.html, widths)
            if any(m.broken_images for m in report.measures.values()):
                # Seen once in hundreds of runs on a loaded machine: a local picture
                # reported unloaded. One that is really missing is missing twice.
                report.measures = chromium.measure(report.sample.html, widths)
            for width in widths:
                height = min(max(report.measures[width].scroll_height, 1), MAX_HEIGHT)
                png = out / f"{report.sample.name}-{width}.png"
                chromium.screenshot(report.sample.html, width, height, png)
                report.screenshots[width] = png
            report.problems = judge(report.measures)
        except ChromiumFailed as exc:
            report.problems = [f"not checked: {exc}"]
        if on_done is not None:
            on_done(report)
        return report

    # A Chromium is a few processes at full tilt for a second: a handful at once keeps
    # a small machine responsive and still uses its cores.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, reports))
