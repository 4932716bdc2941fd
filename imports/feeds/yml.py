"""Yandex Market Language: ``yml_catalog/shop/{currencies,categories,offers}``.

Categories and currencies come before offers in every real feed, so the tree is known
by the time offers arrive; an offer naming an unknown category keeps just that id.
``description`` keeps the feed's text (often HTML in CDATA; templates escape it), and
each ``param`` becomes ``params[name]``, with its ``unit`` appended when there is one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from nudge.imports.errors import RowError
from nudge.imports.feeds.records import Offer, Rejected, build_record, currency, parse_price
from nudge.imports.xmlsafe import Readable, iter_elements, text

ROOT = "yml_catalog"
_TAGS = ("currency", "category", "offer")


class CategoryTree:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.name: dict[str, str] = {}
        self._paths: dict[str, list[str]] = {}
        self._names: dict[str, list[str]] = {}

    def add(self, category_id: str, name: str, parent_id: str) -> None:
        self.name[category_id] = name
        if parent_id:
            self.parent[category_id] = parent_id
        # A late category may re-root an earlier path.
        self._paths.clear()
        self._names.clear()

    def ids(self, leaf: str) -> list[str]:
        """``leaf`` and its ancestors, root first; a cycle in the feed stops the walk."""
        cached = self._paths.get(leaf)
        if cached is not None:
            return cached
        path, seen, node = [], set(), leaf
        while node and node not in seen:
            seen.add(node)
            path.append(node)
            node = self.parent.get(node, "")
        path.reverse()
        self._paths[leaf] = path
        return path

    def names(self, leaf: str) -> list[str]:
        """The names of ``ids(leaf)``; shared between calls, like ``ids``: not to modify."""
        cached = self._names.get(leaf)
        if cached is None:
            cached = self._names[leaf] = [self.name.get(i, i) for i in self.ids(leaf)]
        return cached


def parse_yml(stream: Readable, tree: CategoryTree | None = None) -> Iterator[Offer | Rejected]:
    tree = tree if tree is not None else CategoryTree()
    base_currency = ""
    for element in iter_elements(stream, _TAGS):
        tag = element.tag
        if tag == "offer":
            yield _offer(element, tree, base_currency)
        elif tag == "category":
            cid = (element.get("id") or "").strip()
            if cid:
                tree.add(cid, text(element), (element.get("parentId") or "").strip())
        elif element.get("rate", "").strip() == "1" and not base_currency:
            # The shop's base currency: the one offers without currencyId are priced in.
            with contextlib.suppress(RowError):
                base_currency = currency(element.get("id") or "")


def _offer(element: Any, tree: CategoryTree, base_currency: str) -> Offer | Rejected:
    line = element.sourceline
    product_id = (element.get("id") or "").strip()
    fields: dict[str, str] = {}
    params: dict[str, str] = {}
    for child in element:
        tag = child.tag
        if tag == "param":
            name = (child.get("name") or "").strip()
            unit = (child.get("unit") or "").strip()
            if name:
                params[name] = f"{text(child)} {unit}".strip()
        # Only the first picture is the main image; later ones are extra angles.
        elif tag not in fields and isinstance(tag, str):
            value = child.text  # text() inlined: this loop runs ~10 times per offer
            fields[tag] = value.strip() if value else ""
    try:
        raw_price = fields.get("price", "")
        if not raw_price:
            raise RowError("missing price")
        title = fields.get("name") or " ".join(
            p for p in (fields.get("typePrefix"), fields.get("vendor"), fields.get("model")) if p
        )
        category_id = fields.get("categoryId", "")
        record = build_record(
            product_id=product_id,
            title=title,
            url=fields.get("url", ""),
            price=parse_price(raw_price),
            currency_code=currency(fields.get("currencyId", "")) or base_currency,
            category_ids=tree.ids(category_id) if category_id else [],
            available=(element.get("available") or "true").strip().lower() != "false",
            image_url=fields.get("picture", ""),
            category_path=tree.names(category_id) if category_id else None,
            old_price=parse_price(fields["oldprice"]) if fields.get("oldprice") else None,
            description=fields.get("description", ""),
            params=params or None,
        )
    except RowError as exc:
        return Rejected(line, str(exc), product_id or None)
    return Offer(line, record)
