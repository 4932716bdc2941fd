"""Campaign tracking on outgoing links: UTM parameters on every shop link we send."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    if not url.lower().startswith(("http://", "https://")) or url.startswith(skip_prefixes):
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in params.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tag_html_links(
    markup: str, params: Mapping[str, str], *, skip_prefixes: tuple[str, ...] = ()
) -> str:
    """Add ``params`` to every quoted http(s) ``href`` in rendered HTML."""

    def rewrite(match: re.Match[str]) -> str:
        # Autoescaped output holds "&amp;" in URLs: work on the real URL, escape back.
        url = html.unescape(match.group(3))
        tagged = add_params(url, params, skip_prefixes=skip_prefixes)
        quoted = html.escape(tagged, quote=True)
        return f"{match.group(1)}{match.group(2)}{quoted}{match.group(2)}"

    return _HREF.sub(rewrite, markup)
