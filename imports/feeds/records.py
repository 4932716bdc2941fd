"""The ``catalog`` record every feed format is mapped to, and the checks it must pass.

``category_ids`` lists the product's category and all its ancestors, root first, and
``category_path`` their names in the same order. ``old_price`` is kept only when it is
above the price (a discount to show), ``description`` and ``params`` as the feed has them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from nudge.imports.errors import RowError

# ISO 4217 replaced these codes; feeds (Yandex's above all) still use them.
_CURRENCY_ALIASES = {"RUR": "RUB", "BYR": "BYN"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CURRENCIES: dict[str, str] = {}  # raw code as written -> checked code


@dataclass(slots=True)
class Offer:
    """One product read from a feed, at ``line`` of the source."""

    line: int | None
    record: dict[str, Any]


@dataclass(slots=True)
class Rejected:
    line: int | None
    reason: str
    product_id: str | None = None


def parse_price(raw: str) -> float:
    """``"1234.50"``, ``"1 234,50"``: a finite, non-negative amount, or RowError."""
    try:
        # Most prices are plain numbers: float() takes them as they are (it strips
        # outer whitespace, and refuses the inner spaces and commas handled below).
        value = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            raise RowError(f"bad price {raw!r}")
        return value
    cleaned = raw.replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise RowError(f"bad price {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise RowError(f"bad price {raw!r}")
    return value


def parse_amount(raw: str) -> tuple[float, str]:
    """Google's ``"12.99 USD"`` (either order) as (amount, currency)."""
    parts = raw.split()
    if len(parts) == 2:
        number, code = (parts[0], parts[1]) if _looks_numeric(parts[0]) else (parts[1], parts[0])
        return parse_price(number), currency(code)
    if len(parts) == 1:
        return parse_price(parts[0]), ""
    raise RowError(f"bad price {raw!r}")


def _looks_numeric(token: str) -> bool:
    return bool(token) and (token[0].isdigit() or token[0] in ".-")


def currency(code: str) -> str:
    """An ISO 4217 code, "" for none, or RowError."""
    known = _CURRENCIES.get(code)
    if known is not None:
        return known
    cleaned = code.strip().upper()
    cleaned = _CURRENCY_ALIASES.get(cleaned, cleaned)
    if cleaned and not _CURRENCY.match(cleaned):
        raise RowError(f"bad currency {cleaned!r}")
    # Feeds repeat a handful of codes a million times; bad ones are never cached.
    if len(_CURRENCIES) < 1000:
        _CURRENCIES[code] = cleaned
    return cleaned


def build_record(
    *,
    product_id: str,
    title: str,
    url: str,
    price: float,
    currency_code: str,
    category_ids: list[str],
    available: bool,
    image_url: str,
    category_path: list[str] | None = None,
    old_price: float | None = None,
    description: str = "",
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The contract's record; raises RowError for what the codec would refuse."""
    if not product_id:
        raise RowError("missing id")
    if not title:
        raise RowError("missing name")
    if not url:
        raise RowError("missing url")
    record: dict[str, Any] = {
        "product_id": product_id,
        "title": title,
        "url": url,
        "price": price,
        "currency": currency_code,
        "category_ids": category_ids,
        "available": available,
    }
    if image_url:
        record["image_url"] = image_url
    # Optional fields only when the feed has them: a lean record, and fingerprints that
    # do not change when a feed starts sending an empty element.
    if category_path:
        record["category_path"] = category_path
    if old_price is not None and old_price > price:
        record["old_price"] = old_price
    if description:
        record["description"] = description
    if params:
        record["params"] = params
    return record
