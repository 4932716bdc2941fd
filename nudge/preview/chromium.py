"""Headless Chromium, run once per measurement or screenshot of an email.

Headless Chromium lays a window out no narrower than about 500 px, so a phone-width
window would show a 500 px layout cropped, not a phone's. The mail therefore goes
into an ``<iframe>`` of the wanted width (its ``srcdoc``, which keeps it same-origin
so the wrapper page may read its size) inside a wrapper page that is what Chromium
loads. The iframe's load event waits for the mail's pictures, and the wrapper's for
the iframe, so ``--dump-dom`` (which dumps after the load event) sees final sizes.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nudge.errors import NudgeError

#: Binaries tried in turn: Debian's, then other distributions' and Google's names.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Running as root (CI, containers) needs --no-sandbox; GPU and scrollbars only add noise.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--mute-audio",
)
_RESULT = re.compile(r'<pre id="nudge-sizes">(.*?)</pre>', re.DOTALL)


class ChromiumFailed(NudgeError):
    """Chromium did not run, timed out, or did not produce what was asked of it."""


@dataclass(frozen=True, slots=True)
class Measure:
    """A mail laid out in a ``width`` px frame: its scroll size, the pictures that did
    not load, and the first element sticking out on the right (empty if none)."""

    width: int
    scroll_width: int
    scroll_height: int
    broken_images: tuple[str, ...]
    culprit: str

    @property
    def overflows(self) -> bool:
        return self.scroll_width > self.width


def find_chromium(explicit: str | None = None) -> str | None:
    """``explicit`` if given (a path or a name on PATH), else the first of ``CANDIDATES``."""
    for name in (explicit,) if explicit else CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Runs in the wrapper page: each frame reports its size once loaded; the last one
# writes them all where --dump-dom shows them.
_SCRIPT = """
var sizes = {}, expected = EXPECTED;
function measured(frame) {
  var doc = frame.contentDocument, root = doc.documentElement, width = frame.clientWidth;
  var broken = [], culprit = "";
  Array.prototype.forEach.call(doc.images, function (img) {
    if (!img.complete || img.naturalWidth === 0) broken.push(img.getAttribute("src") || "");
  });
  var all = doc.body ? doc.body.getElementsByTagName("*") : [];
  for (var i = 0; i < all.length && !culprit; i++) {
    var box = all[i].getBoundingClientRect();
    if (box.right > width + 0.5) {
      var style = (all[i].getAttribute("style") || "").slice(0, 80);
      var wide = all[i].getAttribute("width");
      culprit = "<" + all[i].tagName.toLowerCase() + (wide ? ' width="' + wide + '"' : "") +
        (style ? ' style="' + style + '"' : "") + "> " + Math.round(box.width) +
        " px wide, right edge at " + Math.round(box.right);
    }
  }
  sizes[width] = {width: width, scroll_width: root.scrollWidth, scroll_height: root.scrollHeight,
                  broken_images: broken, culprit: culprit};
  if (Object.keys(sizes).length === expected)
    document.getElementById("nudge-sizes").textContent = JSON.stringify(sizes);
}
"""


def measure_page(mail_html: str, widths: Sequence[int]) -> str:
    """A wrapper page measuring ``mail_html`` in one frame per width."""
    frames = "\n".join(
        f'<iframe width="{w}" height="64" onload="measured(this)" '
        f'srcdoc="{html.escape(mail_html, quote=True)}"></iframe>'
        for w in widths
    )
    script = _SCRIPT.replace("EXPECTED", str(len(widths)))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<style>html,body{margin:0;padding:0}iframe{border:0;display:block}</style>"
        f"<script>{script}</script></head><body>\n{frames}\n"
        '<pre id="nudge-sizes"></pre></body></html>'
    )


def shot_page(mail_html: str, width: int, height: int) -> str:
    """A wrapper page showing ``mail_html`` in a ``width`` x ``height`` frame at its corner."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<style>html,body{margin:0;padding:0;overflow:hidden}iframe{border:0;display:block}"
        f"</style></head><body><iframe width='{width}' height='{height}' "
        f'srcdoc="{html.escape(mail_html, quote=True)}"></iframe></body></html>'
    )


def parse_measures(dom: str) -> dict[int, Measure]:
    """The sizes a measuring page wrote into its DOM; ``ChromiumFailed`` if none."""
    found = _RESULT.search(dom)
    if not found or not found.group(1).strip():
        raise ChromiumFailed("the measuring page reported no sizes (did the mail load?)")
    raw = json.loads(html.unescape(found.group(1)))
    return {
        int(w): Measure(
            width=int(m["width"]),
            scroll_width=int(m["scroll_width"]),
            scroll_height=int(m["scroll_height"]),
            broken_images=tuple(str(s) for s in m["broken_images"]),
            culprit=str(m["culprit"]),
        )
        for w, m in raw.items()
    }


class Chromium:
    """One binary, its per-run profile directories under ``workdir``, and a timeout."""

    def __init__(self, binary: str, workdir: Path, timeout_s: float = 60.0) -> None:
        self.binary = binary
        self.workdir = workdir
        self.timeout_s = timeout_s

    def measure(self, mail_html: str, widths: Sequence[int]) -> dict[int, Measure]:
        page = self._page(measure_page(mail_html, widths))
        return parse_measures(self._run(["--dump-dom", page.as_uri()]))

    def screenshot(self, mail_html: str, width: int, height: int, path: Path) -> None:
        page = self._page(shot_page(mail_html, width, height))
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._run([f"--window-size={width},{height}", f"--screenshot={path}", page.as_uri()])
        if not path.is_file() or path.stat().st_size == 0:
            raise ChromiumFailed(f"chromium wrote no screenshot to {path}")

    def _page(self, content: str) -> Path:
        fd, name = tempfile.mkstemp(suffix=".html", dir=self.workdir)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        return Path(name)

    def _run(self, args: list[str]) -> str:
        # A profile per run: concurrent Chromiums must not share one (they would hand
        # their work to the first and exit), and nothing of the user's is touched.
        with tempfile.TemporaryDirectory(dir=self.workdir, prefix="profile-") as profile:
            command = [self.binary, *_FLAGS, f"--user-data-dir={profile}", *args]
            try:
                proc = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # its helpers share its group: a timeout ends all
                )
            except OSError as exc:
                raise ChromiumFailed(f"cannot run {self.binary}: {exc}") from None
            try:
                out, err = proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise ChromiumFailed(
                    f"chromium took longer than {self.timeout_s:.0f}s: {' '.join(args[-1:])}"
                ) from None
        if proc.returncode != 0:
            raise ChromiumFailed(f"chromium exited with {proc.returncode}: {err.strip()[-500:]}")
        return out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
