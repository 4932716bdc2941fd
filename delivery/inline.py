"""An email's ``<style>`` rules written onto its elements, as mail clients need them.

Gmail and Outlook drop or ignore much of a ``<style>`` block, so templates are written
with classes and a stylesheet (readable, one place per rule) and inlined by css-inline
(Rust). Rules that cannot live in a ``style`` attribute (``@media`` queries for phones)
stay in a ``<style>`` tag for the clients that read it.

The built-in templates are inlined once, as Jinja source (``inline_template``); a
flow's own HTML is inlined after each rendering (``inline_css``), which costs about a
third more per email (``benchmarks/render_cost.py``) but needs nothing of its author.
"""

from __future__ import annotations

import logging
import re

import css_inline

log = logging.getLogger(__name__)

# Remote stylesheets are never fetched: templates are untrusted, and a send must not
# wait on someone's server. A <link> stays for the clients that load it themselves.
_INLINER = css_inline.CSSInliner(
    keep_at_rules=True, keep_link_tags=True, load_remote_stylesheets=False
)
_STYLE_TAG = re.compile(r"<style\b", re.IGNORECASE)


def inline_css(html: str) -> str:
    """``html`` with its ``<style>`` rules inlined; without a ``<style>`` tag, unchanged."""
    if not _STYLE_TAG.search(html):
        return html  # nothing to inline: the markup stays exactly as written
    try:
        return _INLINER.inline(html)
    except css_inline.InlineError as exc:
        # The <style> block still works where clients read it: better than no email.
        log.warning("css not inlined: %s", exc)
        return html


# -- a template's source, inlined once ---------------------------------------------

#: Jinja's constructs: a ``{% trans %}`` block whole (its words are a gettext msgid,
#: which must reach the catalogue unchanged), other tags, expressions and comments.
_JINJA = re.compile(
    r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}|\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL
)
_HELD = re.compile(r"\x00(\d+)\x00")
#: An open ``<style>`` or ``<title>`` at the end of the text so far: no comments there.
_RAW_TEXT = re.compile(r"<(style|title)\b[^>]*>(?:(?!</\1).)*\Z", re.DOTALL | re.IGNORECASE)
_RESTORE = re.compile(r"<!--jinja(\d+)-->|jinja(\d+)x")


def inline_template(source: str) -> str:
    """A Jinja HTML template with its ``<style>`` inlined, for every email it renders.

    An HTML parser would move template text found between table tags out of the table
    ("foster parenting"), so each Jinja construct is first hidden: as a comment where
    it stands for content (comments stay where they are, in a table too), as a bare
    token inside a tag or in ``<style>``/``<title>``; then put back. It needs explicit
    ``<tbody>`` tags (else the parser adds one that a loop would cut in two), and
    values computed by Jinja cannot take part in selectors: the built-in layout is
    written so; a marketer's template is inlined per email instead (``inline_css``).
    """
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(match.group(0))
        return f"\x00{len(held) - 1}\x00"

    marked = _JINJA.sub(hold, source)
    out = ""
    at = 0
    for match in _HELD.finditer(marked):
        out += marked[at : match.start()]
        in_tag = out.rfind("<") > out.rfind(">")
        hidden = in_tag or _RAW_TEXT.search(out) is not None
        out += f"jinja{match.group(1)}x" if hidden else f"<!--jinja{match.group(1)}-->"
        at = match.end()
    out += marked[at:]
    inlined = _INLINER.inline(out)

    def restore(match: re.Match[str]) -> str:
        return held[int(match.group(1) or match.group(2))]

    return _RESTORE.sub(restore, inlined)
