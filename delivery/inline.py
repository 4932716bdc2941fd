"""An email's ``<style>`` rules written onto its elements, as mail clients need them.

Gmail and Outlook drop or ignore much of a ``<style>`` block, so templates are written
with classes and a stylesheet (readable, one place per rule) and inlined per rendered
email by css-inline (Rust). Rules that cannot live in a ``style`` attribute (``@media``
queries for phones) stay in a ``<style>`` tag for the clients that read it. Rendered
HTML is inlined, not the Jinja source: an HTML parser moves template text that sits
between table tags out of the table ("foster parenting"), which would break the loops.
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
