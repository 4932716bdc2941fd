"""Safe, constant-memory XML reading for untrusted feeds.

Feeds come from third parties, so the parser never fetches anything (no_network, no
external DTD), never expands entities, and refuses libxml2's huge-tree mode. On top of
that a document whose DTD declares any entity is refused outright: no product feed
needs one, and refusing beats silently importing titles with holes in them (XXE,
billion laughs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from lxml import etree

from nudge.imports.errors import FeedError


class Readable(Protocol):
    """What lxml needs from a stream."""

    def read(self, size: int = -1, /) -> bytes: ...


SAFE_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def root_tag(path: Path) -> str:
    """The root element's (namespaced) tag, after checking the DTD is harmless.

    Reads only up to the root's start tag, so a wrong or unsafe document is refused
    before a single record is produced.
    """
    try:
        for _event, element in etree.iterparse(str(path), events=("start",), **SAFE_OPTIONS):
            dtd = element.getroottree().docinfo.internalDTD
            if dtd is not None and any(True for _ in dtd.iterentities()):
                raise FeedError(
                    f"{path.name}: refused: the document declares XML entities "
                    "(possible XXE or entity-expansion attack)"
                )
            return str(element.tag)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"not an XML document: {exc}") from None
    raise FeedError("empty document")


def iter_elements(stream: Readable, tags: tuple[str, ...]) -> Iterator[Any]:
    """Each finished element with one of ``tags``; handled elements are freed.

    The caller must be done with an element before asking for the next: it is then
    cleared and unlinked, with everything before it, so memory stays flat however
    long the feed.
    """
    try:
        for _event, element in etree.iterparse(stream, events=("end",), tag=tags, **SAFE_OPTIONS):
            yield element
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"broken XML: {exc}") from None


def text(element: Any) -> str:
    """Stripped text of an element (CDATA included); "" when empty."""
    value = element.text
    return value.strip() if value else ""
