"""Google Merchant feeds: RSS 2.0 (``rss/channel/item``) or Atom (``feed/entry``), with
product attributes in the ``g:`` namespace.

``category_ids`` are the cumulative ``g:product_type`` paths ("Home", "Home > Kitchen"),
root first: Google feeds carry category names, not ids, and the cumulative path keeps
two "Accessories" under different parents apart. ``g:google_product_category``, when
given, is appended as-is. "in stock" and "limited availability" count as available;
"out of stock", "preorder" and "backorder" do not (they cannot be bought today).
``g:sale_price``, when lower, is the price.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nudge.imports.errors import RowError
from nudge.imports.feeds.records import Offer, Rejected, build_record, parse_amount
from nudge.imports.xmlsafe import Readable, iter_elements, text

G = "{http://base.google.com/ns/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"
RSS_ROOT = "rss"
ATOM_ROOT = f"{ATOM}feed"
_AVAILABLE = frozenset({"in stock", "in_stock", "instock", "limited availability"})
_FIELDS = {
    f"{G}id": "id",
    f"{G}title": "title",
    "title": "title",
    f"{ATOM}title": "title",
    f"{G}link": "link",
    "link": "link",
    f"{G}image_link": "image",
    f"{G}price": "price",
    f"{G}sale_price": "sale_price",
    f"{G}availability": "availability",
    f"{G}product_type": "product_type",
    f"{G}google_product_category": "gpc",
    f"{G}description": "description",
    "description": "description",
    f"{ATOM}summary": "description",
}


def parse_google(stream: Readable, atom: bool) -> Iterator[Offer | Rejected]:
    for element in iter_elements(stream, (f"{ATOM}entry",) if atom else ("item",)):
        yield _item(element)


def _item(element: Any) -> Offer | Rejected:
    line = element.sourceline
    fields: dict[str, str] = {}
    for child in element:
        tag = child.tag
        if tag == f"{ATOM}link":
            # Atom links are attributes; the alternate (or first) one is the product page.
            if child.get("rel", "alternate") == "alternate" and "link" not in fields:
                fields["link"] = (child.get("href") or "").strip()
            continue
        name = _FIELDS.get(tag) if isinstance(tag, str) else None
        if name and not fields.get(name):
            fields[name] = text(child)
    product_id = fields.get("id", "")
    try:
        if not fields.get("price"):
            raise RowError("missing price")
        price, code = parse_amount(fields["price"])
        old_price = None
        if fields.get("sale_price"):
            sale, sale_code = parse_amount(fields["sale_price"])
            if sale < price and sale_code in ("", code):
                price, old_price = sale, price
        record = build_record(
            product_id=product_id,
            title=fields.get("title", ""),
            url=fields.get("link", ""),
            price=price,
            currency_code=code,
            category_ids=_categories(fields),
            available=fields.get("availability", "in stock").lower() in _AVAILABLE,
            image_url=fields.get("image", ""),
            category_path=_path(fields) or None,
            old_price=old_price,
            description=fields.get("description", ""),
        )
    except RowError as exc:
        return Rejected(line, str(exc), product_id or None)
    return Offer(line, record)


def _path(fields: dict[str, str]) -> list[str]:
    return [p.strip() for p in fields.get("product_type", "").split(">") if p.strip()]


def _categories(fields: dict[str, str]) -> list[str]:
    ids: list[str] = []
    parts = _path(fields)
    for i in range(len(parts)):
        ids.append(" > ".join(parts[: i + 1]))
    if fields.get("gpc"):
        ids.append(fields["gpc"])
    return ids
