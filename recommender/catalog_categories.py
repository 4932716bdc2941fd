"""Which categories each product is in, for the per-category ``popular`` lists.

From a product feed (``nudge train --catalog``), read with the importer's safe parsers,
or from the ``catalog`` topic (``--from-topics``; see :mod:`recommender.topic_source`).
A product's categories are its whole path, root first, so a parent category's list
includes its subcategories' best sellers.
"""

from __future__ import annotations

from nudge.imports.catalog import detect_format
from nudge.imports.feeds.google import parse_google
from nudge.imports.feeds.records import Offer
from nudge.imports.feeds.yml import parse_yml
from nudge.imports.source import local_copy


def categories_from_feed(source: str, fmt: str = "auto") -> dict[str, list[str]]:
    """``{product id: category ids}`` from a YML or Google Merchant feed (path or URL).

    Offers the importer would reject are skipped; an unreadable source or a document
    that is not a feed raises :class:`~imports.errors.FeedError`.
    """
    categories: dict[str, list[str]] = {}
    with local_copy(source) as path:
        kind = detect_format(path, fmt)
        with path.open("rb") as stream:
            items = parse_yml(stream) if kind == "yml" else parse_google(stream, kind == "atom")
            for item in items:
                if isinstance(item, Offer):
                    record = item.record
                    categories[str(record["product_id"])] = [
                        str(c) for c in record.get("category_ids") or ()
                    ]
    return categories
