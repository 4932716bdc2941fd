"""``nudge preview``: every built-in email rendered, measured and photographed.

``samples`` renders them as delivery would, ``chromium`` runs the browser, ``shots``
measures and photographs them and says what is wrong.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

from nudge.demo import demo_catalog
from nudge.demo.images import product_image
from nudge.preview.chromium import Chromium, ChromiumFailed, Measure, find_chromium
from nudge.preview.samples import Sample, built_in_steps, render_samples
from nudge.preview.shots import DESKTOP, PHONE, WIDTHS, Report, judge, shoot
from nudge.settings import Settings

__all__ = [
    "DESKTOP", "PHONE", "WIDTHS", "Chromium", "ChromiumFailed", "Measure", "Report",
    "Sample", "built_in_steps", "find_chromium", "judge", "preview", "render_samples",
    "shoot", "write_pictures",
]  # fmt: skip


def write_pictures(folder: Path) -> str:
    """The demo catalogue's pictures as ``<folder>/<product_id>.png``; the base URL
    (``file://``) that ``demo_catalog(image_base=...)`` takes to point at them."""
    folder.mkdir(parents=True, exist_ok=True)
    for product in demo_catalog():
        (folder / f"{product['product_id']}.png").write_bytes(product_image(product))
    return folder.resolve().as_uri()


def preview(
    settings: Settings,
    out: Path,
    binary: str,
    *,
    now_ms: int,
    kinds: Collection[str] = (),
    jobs: int = 3,
    timeout_s: float = 60.0,
    on_done: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Every built-in template (those of ``kinds`` only, if given) into ``out``: HTML,
    a screenshot per width, and a report of what is wrong with each. The pictures go
    to ``<out>/img``, so the HTML files show them when opened in a browser too."""
    image_base = write_pictures(out / "img")
    samples = [
        s for s in render_samples(settings, image_base, now_ms) if not kinds or s.kind in kinds
    ]
    with tempfile.TemporaryDirectory(prefix="nudge-preview-") as work:
        chromium = Chromium(binary, Path(work), timeout_s)
        return shoot(samples, out, chromium, jobs=jobs, on_done=on_done)
