"""nudge.codec: JSON and Avro payloads in, validated Faust records out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
import pytest

from nudge import codec
from nudge.codec import (
    AVRO_HEADERS,
    DECODERS,
    decode_click,
    decode_customer,
    decode_order,
    decode_product,
    encode_avro,
    encode_json,
)
from nudge.errors import InvalidMessage
from nudge.models.events import ClickEvent, CustomerEvent, OrderEvent, OrderItem, Product

MAX = 64 * 1024
CLICK = {"event_id": "e1", "type": "product_view", "customer_id": "c1", "ts": 1_700_000_000_000,
         "product_id": "p1", "quantity": 2, "price": 9.5, "session_id": "s1"}  # fmt: skip
ORDER = {"event_id": "e2", "type": "order_placed", "order_id": "o1", "customer_id": "c1",
         "ts": 1_700_000_000_001, "items": [{"product_id": "p1", "quantity": 2, "price": 9.5},
                                           {"product_id": "p2", "quantity": 1, "price": 3}],
         "total": 22.0, "currency": "EUR", "seller_id": "s9"}  # fmt: skip
CUSTOMER = {"event_id": "e3", "customer_id": "c1", "ts": 1_700_000_000_002, "email": "a@b.c",
            "first_name": "Ada", "timezone": "Europe/Paris", "consent": {"email": "subscribed"},
            "attributes": {"vip": True, "orders": 3, "ltv": 12.5, "tier": "gold",
                           "x": None}}  # fmt: skip
PRODUCT = {"product_id": "p1", "title": "Mug", "url": "https://shop/p1", "price": 12,
           "currency": "EUR", "category_ids": ["kitchen"], "available": True}  # fmt: skip
PAYLOADS: dict[str, dict[str, Any]] = {
    "clickstream": CLICK, "orders": ORDER, "customers": CUSTOMER, "catalog": PRODUCT,
}  # fmt: skip
RECORDS: dict[str, type[faust.Record]] = {
    "clickstream": ClickEvent, "orders": OrderEvent, "customers": CustomerEvent,
    "catalog": Product,
}  # fmt: skip
JSON_HEADER_FORMS: list[Any] = [
    None, [], {}, [("content-type", b"application/json")], {"Content-Type": b"application/json"},
    [("CONTENT-TYPE", b"Application/JSON; charset=utf-8")], [(b"content-type", b"")],
    [("x-trace", b"1")],
]  # fmt: skip
AVRO_HEADER_FORMS: list[Any] = [
    AVRO_HEADERS, {"content-type": b"avro/binary"}, [("Content-Type", b"AVRO/Binary ")],
    [("x-trace", b"1"), ("content-type", b"application/json"), ("content-type", b"avro/binary")],
    [(b"content-type", b"avro/binary")],
]  # fmt: skip


def _reason(fn: Callable[[], object]) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        fn()
    return info.value


def _json(topic: str, **changes: Any) -> bytes:
    data = {**PAYLOADS[topic], **changes}
    return encode_json({k: v for k, v in data.items() if v is not _DROP})


_DROP: Any = object()


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("topic", list(PAYLOADS))
@pytest.mark.parametrize("headers", JSON_HEADER_FORMS)
def test_json_round_trip(topic: str, headers: Any) -> None:
    record = DECODERS[topic](encode_json(PAYLOADS[topic]), headers, MAX)
    assert isinstance(record, RECORDS[topic])
    assert encode_json(record) == encode_json(_expected(topic))


@pytest.mark.parametrize("topic", list(PAYLOADS))
@pytest.mark.parametrize("headers", AVRO_HEADER_FORMS)
def test_avro_round_trip(topic: str, headers: Any) -> None:
    value = encode_avro(topic, PAYLOADS[topic])
    record = DECODERS[topic](value, headers, MAX)
    assert isinstance(record, RECORDS[topic])
    assert encode_json(record) == encode_json(_expected(topic))
    assert encode_avro(topic, record) == value  # records re-encode to the same bytes


def _expected(topic: str) -> faust.Record:
    """What Faust itself builds from the payload (float prices, OrderItem items)."""
    data = dict(PAYLOADS[topic])
    if topic == "orders":
        data["items"] = [OrderItem(**{**i, "price": float(i["price"])}) for i in data["items"]]
    if topic == "catalog":
        data["price"] = float(data["price"])
    return RECORDS[topic](**data)


def test_decoded_records_are_what_faust_builds() -> None:
    # The codec bypasses Faust's __init__ when that is safe: the results must not differ.
    assert all(
        f.__name__ == "build"
        for f in (codec._new_click, codec._new_order, codec._new_customer, codec._new_product)
    )
    for topic in PAYLOADS:
        got = DECODERS[topic](encode_json(PAYLOADS[topic]), None, MAX)
        want = _expected(topic)
        assert got == want
        assert got.__dict__ == want.__dict__
        assert got.dumps() == want.dumps()
        assert repr(got) == repr(want)
        assert type(got).loads(got.dumps()) == want


def test_orders_items_are_records() -> None:
    for value, headers in (
        (encode_json(ORDER), None),
        (encode_avro("orders", ORDER), AVRO_HEADERS),
    ):
        order = decode_order(value, headers, MAX)
        assert [type(i) for i in order.items] == [OrderItem, OrderItem]
        assert order.items[1].price == 3.0 and isinstance(order.items[1].price, float)
        assert order.historical is False and order.status is None


def test_minimal_payloads_get_defaults() -> None:
    click = decode_click(_json("clickstream", type="cart_add", quantity=_DROP, price=_DROP,
                               session_id=_DROP), None, MAX)  # fmt: skip
    assert (click.quantity, click.price, click.session_id, click.query) == (None,) * 4
    customer = decode_customer(encode_json({"event_id": "e", "customer_id": "c", "ts": 0}))
    assert customer.consent is None and customer.attributes is None and customer.email is None
    order = decode_order(_json("orders", items=[], historical=True, seller_id=None))
    assert order.items == [] and order.historical is True and order.seller_id is None


def test_consent_drops_nulls_and_unknown_channels() -> None:
    value = _json("customers", consent={"email": "unsubscribed", "sms": None, "push": "x"})
    assert decode_customer(value).consent == {"email": "unsubscribed"}
    avro = encode_avro("customers", {**CUSTOMER, "consent": {"sms": "pending"}})
    assert decode_customer(avro, AVRO_HEADERS).consent == {"sms": "pending"}


def test_unknown_top_level_fields_are_ignored() -> None:
    assert decode_click(_json("clickstream", referrer="x")) == decode_click(_json("clickstream"))


@pytest.mark.parametrize(
    ("type_", "field"),
    [("product_view", "product_id"), ("cart_add", "product_id"), ("cart_remove", "product_id"),
     ("category_view", "category_id"), ("search", "query")],
)  # fmt: skip
def test_click_types_need_their_field(type_: str, field: str) -> None:
    base = {"product_id": _DROP, "category_id": _DROP, "query": _DROP}
    ok = decode_click(_json("clickstream", **{**base, "type": type_, field: "v"}))
    assert getattr(ok, field) == "v"
    err = _reason(lambda: decode_click(_json("clickstream", **{**base, "type": type_})))
    assert err.reason == "missing_field" and field in err.detail


def test_encode_helpers() -> None:
    assert AVRO_HEADERS == [("content-type", b"avro/binary")]
    assert encode_json({"a": 1}) == b'{"a":1}'
    with pytest.raises(ValueError):
        encode_avro("nope", {})
    with pytest.raises((ValueError, TypeError)):
        encode_avro("clickstream", {**CLICK, "ts": "soon"})
    assert set(DECODERS) == {"clickstream", "orders", "customers", "catalog"}


# ------------------------------------------------------------------------ reason codes
def _avro_click(**changes: Any) -> bytes:
    return encode_avro("clickstream", {**CLICK, **changes})


CASES: list[tuple[str, Callable[[], object], str]] = [
    ("empty_payload", lambda: decode_click(None, None, MAX), ""),
    ("empty_payload", lambda: decode_click(b"", AVRO_HEADERS, MAX), ""),
    ("oversized_payload", lambda: decode_click(_json("clickstream"), None, 10), "> 10"),
    ("oversized_payload", lambda: decode_click(b"x" * 11, [("content-type", b"text/xml")], 10), ""),
    ("unsupported_content_type",
     lambda: decode_click(_json("clickstream"), {"Content-Type": b"text/xml"}, MAX), "text/xml"),
    ("malformed_json", lambda: decode_click(b"{nope", None, MAX), ""),
    ("malformed_json", lambda: decode_click(b"\xff\xfe", None, MAX), ""),
    ("malformed_json", lambda: decode_click(b"   ", None, MAX), ""),
    ("bad_avro", lambda: decode_click(b"\x02", AVRO_HEADERS, MAX), ""),
    ("bad_avro", lambda: decode_click(_avro_click()[:-3], AVRO_HEADERS, MAX), ""),
    ("bad_avro", lambda: decode_click(_avro_click() + b"\x00", AVRO_HEADERS, MAX), "trailing"),
    ("bad_avro", lambda: decode_click(_json("clickstream"), AVRO_HEADERS, MAX), ""),
    ("not_an_object", lambda: decode_click(b"[1, 2]", None, MAX), "list"),
    ("not_an_object", lambda: decode_click(b"null", None, MAX), ""),
    ("not_an_object", lambda: decode_order(b'"order"', None, MAX), "str"),
    ("missing_customer_id", lambda: decode_click(_json("clickstream", customer_id=_DROP)), ""),
    ("missing_customer_id", lambda: decode_click(_json("clickstream", customer_id="")), ""),
    ("missing_customer_id", lambda: decode_click(_json("clickstream", customer_id="  ")), ""),
    ("missing_customer_id", lambda: decode_order(_json("orders", customer_id=42)), "42"),
    ("missing_customer_id", lambda: decode_customer(_json("customers", customer_id=None)), ""),
    ("missing_customer_id", lambda: decode_click(_avro_click(customer_id=""), AVRO_HEADERS), ""),
    ("missing_field", lambda: decode_click(_json("clickstream", event_id=_DROP)), "event_id"),
    ("missing_field", lambda: decode_click(_json("clickstream", event_id="")), "event_id"),
    ("missing_field", lambda: decode_click(_json("clickstream", ts=None)), "ts"),
    ("missing_field", lambda: decode_click(_json("clickstream", type=_DROP)), "type"),
    ("missing_field", lambda: decode_order(_json("orders", order_id=_DROP)), "order_id"),
    ("missing_field", lambda: decode_order(_json("orders", items=_DROP)), "items"),
    ("missing_field", lambda: decode_order(_json("orders", total=_DROP)), "total"),
    ("missing_field", lambda: decode_order(_json("orders", items=[{"quantity": 1, "price": 1}])),
     "items[0].product_id"),
    ("missing_field", lambda: decode_customer(_json("customers", ts=_DROP)), "ts"),
    ("missing_field", lambda: decode_product(_json("catalog", product_id=_DROP)), "product_id"),
    ("missing_field", lambda: decode_product(_json("catalog", url="")), "url"),
    ("missing_field", lambda: decode_product(_json("catalog", available=None)), "available"),
    ("unknown_type", lambda: decode_click(_json("clickstream", type="page_view")), "page_view"),
    ("unknown_type", lambda: decode_order(_json("orders", type="product_view")), "product_view"),
    ("unknown_type", lambda: decode_click(_avro_click(type="wishlist_add"), AVRO_HEADERS),
     "wishlist_add"),
    ("bad_field", lambda: decode_click(_json("clickstream", type=3)), "type"),
    ("bad_field", lambda: decode_click(_json("clickstream", ts="1700000000000")), "ts"),
    ("bad_field", lambda: decode_click(_json("clickstream", ts=1.7e12)), "ts"),
    ("bad_field", lambda: decode_click(_json("clickstream", ts=True)), "ts"),
    ("bad_field", lambda: decode_click(_json("clickstream", ts=-1)), "ts"),
    ("bad_field", lambda: decode_click(_json("clickstream", price="9.50")), "price"),
    ("bad_field", lambda: decode_click(_json("clickstream", price=-1.0)), "price"),
    ("bad_field", lambda: decode_click(_json("clickstream", quantity=1.5)), "quantity"),
    ("bad_field", lambda: decode_click(_json("clickstream", quantity=False)), "quantity"),
    ("bad_field", lambda: decode_click(_json("clickstream", product_id=7)), "product_id"),
    ("bad_field", lambda: decode_click(_avro_click(price=float("nan")), AVRO_HEADERS), "price"),
    ("bad_field", lambda: decode_order(_json("orders", items={"p1": 1})), "items"),
    ("bad_field", lambda: decode_order(_json("orders", items=["p1"])), "items[0]"),
    ("bad_field", lambda: decode_order(_json("orders", items=[{"product_id": "p", "quantity": "2",
                                                              "price": 1}])), "items[0].quantity"),
    ("bad_field", lambda: decode_order(_json("orders", total="22")), "total"),
    ("bad_field", lambda: decode_order(_json("orders", historical="yes")), "historical"),
    ("bad_field", lambda: decode_customer(_json("customers", consent={"email": "yes"})),
     "consent.email"),
    ("bad_field", lambda: decode_customer(_json("customers", consent="subscribed")), "consent"),
    ("bad_field", lambda: decode_customer(_json("customers", attributes={"a": [1]})),
     "attributes.a"),
    ("bad_field", lambda: decode_customer(_json("customers", attributes={"a": {"b": 1}})),
     "attributes.a"),
    ("bad_field", lambda: decode_customer(_json("customers", attributes=[1])), "attributes"),
    ("bad_field", lambda: decode_customer(_json("customers", email=["a@b.c"])), "email"),
    ("bad_field", lambda: decode_product(_json("catalog", category_ids="kitchen")),
     "category_ids"),
    ("bad_field", lambda: decode_product(_json("catalog", category_ids=["a", 2])),
     "category_ids[1]"),
    ("bad_field", lambda: decode_product(_json("catalog", available=1)), "available"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "call", "detail"), CASES)
def test_reason_codes(reason: str, call: Callable[[], object], detail: str) -> None:
    err = _reason(call)
    assert err.reason == reason, err
    assert detail in err.detail, err


def test_every_reason_code_is_covered() -> None:
    assert {c[0] for c in CASES} == {
        "empty_payload", "oversized_payload", "unsupported_content_type", "malformed_json",
        "bad_avro", "not_an_object", "missing_customer_id", "missing_field", "unknown_type",
        "bad_field",
    }  # fmt: skip


def test_size_limit_is_inclusive() -> None:
    value = _json("clickstream")
    assert decode_click(value, None, len(value)).event_id == "e1"
    assert _reason(lambda: decode_click(value, None, len(value) - 1)).reason == "oversized_payload"


def test_catalog_needs_no_customer_id() -> None:
    assert decode_product(encode_avro("catalog", PRODUCT), AVRO_HEADERS).price == 12.0


# ---------------------------------------------------------- customers: field rejections
BAD_EMAILS: list[Any] = [
    "ann\n@example.com",  # these two pass the importers' normaliser on its own
    "ann@ex\n.com",
    "ann\r\n@example.com",
    "ann@example.com\r\nBcc: evil@example.com",
    "ann@example.com\n",
    "not-an-email",
    "",
]


def _customer_value(fmt: str, **changes: Any) -> tuple[bytes, Any]:
    data = {**CUSTOMER, "last_name": "Lovelace", **changes}
    if fmt == "avro":
        return encode_avro("customers", data), AVRO_HEADERS
    return encode_json(data), None


@pytest.mark.parametrize(
    ("fmt", "email"),
    [("json", e) for e in [*BAD_EMAILS, ["ann@example.com"], 42]]
    + [("avro", e) for e in BAD_EMAILS],  # Avro's schema cannot carry a non-string there
)
def test_a_bad_email_drops_only_that_field(fmt: str, email: Any) -> None:
    value, headers = _customer_value(fmt, email=email)
    event, rejected = codec.decode_customer_partial(value, headers, MAX)
    assert event.email is None  # as if absent: the stored address is kept
    assert event.consent == {"email": "subscribed"}
    assert (event.first_name, event.last_name) == ("Ada", "Lovelace")
    assert event.attributes == {"vip": True, "orders": 3, "ltv": 12.5, "tier": "gold", "x": None}
    assert [(r.field, r.reason) for r in rejected] == [("email", "bad_field")]
    assert rejected[0].detail.startswith("email: ")


@pytest.mark.parametrize("email", [*BAD_EMAILS, ["ann@example.com"]])
def test_the_all_or_nothing_decoder_refuses_a_bad_email(email: Any) -> None:
    # What ``nudge import customers`` validates its rows with: the row is rejected.
    err = _reason(lambda: decode_customer(_json("customers", email=email)))
    assert err.reason == "bad_field" and err.detail.startswith("email: ")


@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_good_emails_are_normalised_as_on_import(fmt: str) -> None:
    value, headers = _customer_value(fmt, email=" Ann.Lee@Bücher.Example ")
    event, rejected = codec.decode_customer_partial(value, headers, MAX)
    assert event.email == "Ann.Lee@xn--bcher-kva.example" and rejected == ()
    assert decode_customer(value, headers, MAX).email == "Ann.Lee@xn--bcher-kva.example"
    missing, none_rejected = codec.decode_customer_partial(_json("customers", email=_DROP))
    assert missing.email is None and none_rejected == ()


@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_names_with_line_breaks_are_kept_as_sent(fmt: str) -> None:
    # Names never reach a header raw (delivery cleans them there), so they are no
    # reason to refuse anything at the input.
    value, headers = _customer_value(fmt, first_name="Ann\r\nBcc: evil@example.com")
    event, rejected = codec.decode_customer_partial(value, headers, MAX)
    assert event.first_name == "Ann\r\nBcc: evil@example.com" and rejected == ()


def test_a_record_unusable_as_a_whole_still_raises() -> None:
    value = _json("customers", email="ann\n@example.com", ts=_DROP)
    assert _reason(lambda: codec.decode_customer_partial(value)).reason == "missing_field"
    value = _json("customers", email="ann\n@example.com", customer_id=_DROP)
    assert _reason(lambda: codec.decode_customer_partial(value)).reason == "missing_customer_id"


def test_a_rejection_becomes_a_dead_letter_with_the_record_coordinates() -> None:
    from types import SimpleNamespace

    from nudge.models.commands import DeadLetter

    value = _json("customers", email="ann@example.com\r\nBcc: evil@example.com")
    _, (rejection,) = codec.decode_customer_partial(value)
    record = SimpleNamespace(
        topic="customers", partition=3, offset=41, key=b"c1", value=value,
        headers=[("trace", b"t1")],
    )  # fmt: skip
    letter = DeadLetter.of(record, rejection.error(), 1_700_000_000_000)
    headers = dict(letter.headers())
    assert headers["nudge.dlq.reason"] == b"bad_field"
    assert headers["nudge.dlq.detail"].startswith(b"email: ")
    assert b"rest applied" in headers["nudge.dlq.detail"]
    assert (headers["nudge.dlq.topic"], headers["nudge.dlq.partition"]) == (b"customers", b"3")
    assert headers["nudge.dlq.offset"] == b"41" and headers["trace"] == b"t1"
    assert (letter.key, letter.value) == (b"c1", value)  # the original bytes, untouched
