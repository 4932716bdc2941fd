"""Campaign tracking on outgoing links: UTM parameters on every shop link we send."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_HTTP = ("http://", "https://")
# Quoted href values only: our own templates and any sane marketer's quote attributes,
# and rewriting unquoted ones risks corrupting markup we do not understand.
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"']*)\2""", re.IGNORECASE)


def utm_params(source: str, medium: str, campaign: str, content: str) -> dict[str, str]:
    return {
        "utm_source": source,
        "utm_medium": medium,
        "utm_campaign": campaign,
        "utm_content": content,
    }


def add_params(url: str, params: Mapping[str, str], *, skip_prefixes: tuple[str, ...] = ()) -> str:
    """``url`` with ``params`` added to its query.

    Existing parameters are kept as they are, including any ``utm_*`` the marketer set
    on purpose, so only missing ones are added. Non-http(s) links (mailto:, tel:) and
    our own links (``skip_prefixes``: unsubscribe, which is signed) are left alone.
    """
    if not url.lower().startswith(_HTTP) or url.startswith(skip_prefixes):
        return url
    return _add_params(url, tuple(params.items()))


# The same few hundred shop and product URLs recur in every email of a campaign, and
# parsing and re-encoding each was a tenth of the delivery worker's CPU: remember them.
@functools.lru_cache(maxsize=4096)
def _add_params(url: str, params: tuple[tuple[str, str], ...]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in params if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tag_html_links(
    markup: str,
    params: Mapping[str, str],
    *,
    skip_prefixes: tuple[str, ...] = (),
    wrap: Callable[[str], str] | None = None,
) -> str:
    """Add ``params`` to every quoted http(s) ``href`` in rendered HTML.

    ``wrap`` (click tracking) then maps each tagged URL, unescaped, to the ``href``
    value the link gets, HTML-escaped: in the same pass, so a message's links are
    scanned once.
    """
    items = tuple(params.items())

    def rewrite(match: re.Match[str]) -> str:
        quoted = match.group(3)
        # Autoescaped output holds "&amp;" in URLs: work on the real URL, escape back.
        # Skipped links (the per-customer unsubscribe URL) would only fill the cache.
        if skip_prefixes and (url := html.unescape(quoted)).startswith(skip_prefixes):
            tagged = html.escape(url, quote=True)
        elif wrap is not None:
            tagged = wrap(_tag_url(quoted, items))
        else:
            tagged = _tag_href(quoted, items)
        return f"{match.group(1)}{match.group(2)}{tagged}{match.group(2)}"

    lowered = markup.lower()
    if len(lowered) != len(markup):
        # A few characters change length when lowercased; indexes would not line up.
        return _HREF.sub(rewrite, markup)
    # Same result as _HREF.sub, but a case-insensitive pattern with \b cannot use the
    # regex engine's literal search and crawled the whole ~10 KB body: find "href"
    # with str.find (an order of magnitude faster) and match the pattern only there.
    out: list[str] = []
    last = pos = 0
    while (at := lowered.find("href", pos)) >= 0:
        match = _HREF.match(markup, at)
        if match is None:
            pos = at + 4
            continue
        out.append(markup[last:at])
        out.append(rewrite(match))
        last = pos = match.end()
    out.append(markup[last:])
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _tag_href(quoted_url: str, params: tuple[tuple[str, str], ...]) -> str:
    return html.escape(_tag_url(quoted_url, params), quote=True)


@functools.lru_cache(maxsize=4096)
def _tag_url(quoted_url: str, params: tuple[tuple[str, str], ...]) -> str:
    """The real (unescaped) URL of an ``href`` value, tagged."""
    url = html.unescape(quoted_url)
    return _add_params(url, params) if url.lower().startswith(_HTTP) else url
