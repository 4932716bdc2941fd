"""Feed parsing without a broker: field mapping, rejects with line numbers, safety."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from nudge.codec import decode_product
from nudge.imports.catalog import detect_format
from nudge.imports.errors import FeedError, RowError
from nudge.imports.feeds.google import parse_google
from nudge.imports.feeds.records import Offer, Rejected, currency, parse_price
from nudge.imports.feeds.yml import CategoryTree, parse_yml
from nudge.imports.xmlsafe import root_tag

FIXTURES = Path(__file__).parent / "fixtures"


def parse(name: str) -> tuple[dict[str, dict], list[Rejected]]:
    path = FIXTURES / name
    kind = detect_format(path, "auto")
    with path.open("rb") as fh:
        items = list(parse_yml(fh) if kind == "yml" else parse_google(fh, kind == "atom"))
    offers = {i.record["product_id"]: i.record for i in items if isinstance(i, Offer)}
    return offers, [i for i in items if isinstance(i, Rejected)]


def test_yml_offers_categories_and_rejects() -> None:
    offers, rejected = parse("shop.yml.xml")
    assert offers["p-1"] == {
        "product_id": "p-1",
        "title": 'Chef\'s knife "Pro" 20 cm',
        "url": "https://shop.example.com/p/1",
        "price": 1290.5,
        "currency": "RUB",  # RUR is the pre-1998 code
        "category_ids": ["1", "10", "101"],  # root first
        "available": True,
        "image_url": "https://img.example.com/1a.jpg",
        "category_path": ["Home", "Kitchen", "Knives"],
        "old_price": 1500.0,
        "description": "<p>Forged <b>steel</b>.</p>",  # CDATA kept as the feed wrote it
        "params": {"Length": "20 cm"},  # the unit follows the value
    }
    assert offers["p-2"]["title"] == "Hose Gardena Classic 15m"
    assert offers["p-2"]["available"] is False
    assert offers["p-2"]["currency"] == "RUB"  # the base currency (rate="1")
    assert "image_url" not in offers["p-2"]
    assert not {"old_price", "description", "params"} & set(offers["p-2"]), "absent stays absent"
    assert offers["p-6"]["price"] == 5.5
    assert offers["p-6"]["category_ids"] == ["999"]
    assert [(r.line, r.reason) for r in rejected] == [
        (38, "bad price 'abc'"),
        (43, "missing id"),
        (48, "missing url"),
    ]
    for record in offers.values():
        assert decode_product(orjson.dumps(record)).product_id == record["product_id"]


def test_google_rss() -> None:
    offers, rejected = parse("merchant.rss.xml")
    shirt = offers["sku-1"]
    assert shirt["title"] == "Linen Shirt & Co."
    assert shirt["price"] == 29.99 and shirt["currency"] == "USD"
    assert shirt["old_price"] > shirt["price"], "g:price becomes the old price under a sale"
    assert shirt["category_path"] == ["Apparel", "Men", "Shirts"]
    assert shirt["category_ids"] == [
        "Apparel",
        "Apparel > Men",
        "Apparel > Men > Shirts",
        "212",
    ]
    assert offers["sku-2"]["url"] == "https://shop.example.com/sku-2"
    assert offers["sku-2"]["available"] is False
    assert [(r.line, r.reason, r.product_id) for r in rejected] == [(25, "missing price", "sku-3")]


def test_google_atom() -> None:
    offers, rejected = parse("merchant.atom.xml")
    assert offers["a-1"]["url"] == "https://shop.example.com/a-1"
    assert offers["a-1"]["category_ids"] == ["Home", "Home > Kitchen"]
    assert offers["a-1"]["category_path"] == ["Home", "Kitchen"]
    assert offers["a-2"]["price"] == 20.0 and offers["a-2"]["currency"] == "EUR"
    assert offers["a-2"]["available"] is False
    assert [(r.line, r.reason) for r in rejected] == [(22, "missing name")]
    for record in offers.values():
        decode_product(orjson.dumps(record))


def test_entities_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    feed = tmp_path / "xxe.xml"
    feed.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE yml_catalog [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        "<yml_catalog><shop><offers/></shop></yml_catalog>"
    )
    with pytest.raises(FeedError, match="entities"):
        root_tag(feed)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("<html><body>Not found</body></html>", "root element <html>"),
        ('{"products": []}', "not an XML document"),
        ("", "not an XML document"),
    ],
)
def test_not_a_feed(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(content)
    with pytest.raises(FeedError, match=match):
        detect_format(path, "auto")


def test_format_mismatch() -> None:
    with pytest.raises(FeedError, match="--format yml"):
        detect_format(FIXTURES / "merchant.rss.xml", "yml")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("12.5", 12.5), (" 7 ", 7.0), ("1 234,50", 1234.5), ("1\u00a0234.5", 1234.5), ("0", 0.0)],
)
def test_prices(raw: str, value: float) -> None:
    assert parse_price(raw) == value


@pytest.mark.parametrize("raw", ["nan", "inf", "-1", "1e999", "abc", "1,2,3", ""])
def test_bad_prices(raw: str) -> None:
    with pytest.raises(RowError, match="bad price"):
        parse_price(raw)


def test_currencies_are_checked_every_time() -> None:
    for _ in range(2):  # the second time from the cache
        assert currency(" rur ") == "RUB"
        assert currency("") == ""
        with pytest.raises(RowError, match="bad currency 'EURO'"):
            currency("euro")


def test_category_names_follow_late_categories() -> None:
    tree = CategoryTree()
    tree.add("2", "Knives", "1")
    assert (tree.ids("2"), tree.names("2")) == (["1", "2"], ["1", "Knives"])
    tree.add("1", "Kitchen", "")
    assert (tree.ids("2"), tree.names("2")) == (["1", "2"], ["Kitchen", "Knives"])
