"""Decoding of the input topics into Faust records: the hot path of every stream worker.

A value is JSON (UTF-8) unless its ``content-type`` header says ``avro/binary``, in which
case it is schemaless Avro written with the topic's schema from ``schemas/``. Either way
the payload is then checked by the same validator, which is derived from that schema at
import time (a field is required exactly when the schema gives it no default), plus the
few rules a schema cannot say: customer ids, event types, per-type fields, ranges.

Every failure raises :class:`~nudge.errors.InvalidMessage` with one of these reasons:
``empty_payload``, ``oversized_payload``, ``unsupported_content_type``, ``malformed_json``,
``bad_avro``, ``not_an_object``, ``missing_customer_id``, ``missing_field``,
``unknown_type``, ``bad_field``. ``detail`` names the field where there is one.

Some fields of a ``customers`` record are optional on their own (today: ``email``). A
bad value there need not cost the shopper the rest of the record (their consent above
all): :func:`decode_customer_partial` drops just that field, as if it were absent, and
reports it as a :class:`FieldRejection` for the dead-letter topic.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import fastavro
import faust
import orjson

from nudge.errors import InvalidMessage
from nudge.imports.emails import normalise_email
from nudge.imports.errors import RowError
from nudge.models.events import (
    CLICK_TYPES,
    ORDER_TYPES,
    ClickEvent,
    CustomerEvent,
    OrderEvent,
    Product,
)
from nudge.models.sellers import SellerProfile
from nudge.schemas import load_schema
from nudge.validation import SPECS, Checker, bad_field, builder, check_fields

Headers = Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None


class Decoder(Protocol):
    """The signature shared by the ``decode_*`` functions (see ``DECODERS``)."""

    def __call__(
        self, value: bytes | None, headers: Headers = ..., max_bytes: int = ...
    ) -> faust.Record: ...


DEFAULT_MAX_BYTES = 64 * 1024
AVRO_CONTENT_TYPE = "avro/binary"
JSON_CONTENT_TYPE = "application/json"
AVRO_HEADERS: list[tuple[str, bytes]] = [("content-type", AVRO_CONTENT_TYPE.encode())]

# Fields that must be present (non-empty) for a given event type.
CLICK_TYPE_REQUIRES: dict[str, str] = {
    "product_view": "product_id",
    "cart_add": "product_id",
    "cart_remove": "product_id",
    "product_subscribe": "product_id",
    "category_view": "category_id",
    "search": "query",
}
# ----------------------------------------------------------------------------- parsing


def _is_avro(headers: Headers) -> bool:
    """True for ``avro/binary``, False for JSON; raises on any other content type."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: Any = None
    for key, val in items or ():
        k = key.decode("latin-1") if isinstance(key, bytes | bytearray) else key
        if k.lower() == "content-type":
            found = val
    if not found:
        return False
    if found == b"avro/binary":
        return True
    if found == b"application/json":
        return False
    raw = found.decode("latin-1") if isinstance(found, bytes | bytearray) else str(found)
    ct = raw.split(";", 1)[0].strip().lower()
    if ct == AVRO_CONTENT_TYPE:
        return True
    if ct == JSON_CONTENT_TYPE or not ct:
        return False
    raise InvalidMessage("unsupported_content_type", raw[:200])


def _parse(topic: str, value: bytes | None, headers: Headers, max_bytes: int) -> dict[str, Any]:
    if not value:
        raise InvalidMessage("empty_payload")
    if len(value) > max_bytes:
        raise InvalidMessage("oversized_payload", f"{len(value)} bytes > {max_bytes}")
    if headers and _is_avro(headers):
        fo = io.BytesIO(value)
        try:
            data = fastavro.schemaless_reader(fo, load_schema(topic), None)
        except Exception as exc:  # fastavro raises EOFError, IndexError, ValueError, ...
            raise InvalidMessage("bad_avro", f"{type(exc).__name__}: {exc}"[:200]) from exc
        if fo.tell() != len(value):
            raise InvalidMessage("bad_avro", f"{len(value) - fo.tell()} trailing bytes")
    else:
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidMessage("malformed_json", str(exc)[:200]) from exc
    if type(data) is not dict:
        raise InvalidMessage("not_an_object", type(data).__name__)
    return data


def _customer_id(data: dict[str, Any]) -> None:
    cid = data.get("customer_id")
    if type(cid) is not str or not cid.strip():
        raise InvalidMessage("missing_customer_id", repr(cid)[:80])


def _event_type(data: dict[str, Any], allowed: frozenset[str]) -> str:
    t = data.get("type")
    if t is None or t == "":
        raise InvalidMessage("missing_field", "type")
    if type(t) is not str:
        raise bad_field("", "type", "a string", t)
    if t not in allowed:
        raise InvalidMessage("unknown_type", t[:80])
    return t


# ---------------------------------------------------------------------------- decoders
_CLICK = SPECS["clickstream"]
_ORDER = SPECS["orders"]
_CUSTOMER = SPECS["customers"]
_PRODUCT = SPECS["catalog"]
_new_click = builder(ClickEvent, _CLICK)
_new_order = builder(OrderEvent, _ORDER)
_new_customer = builder(CustomerEvent, _CUSTOMER)
_new_product = builder(Product, _PRODUCT)


def decode_click(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> ClickEvent:
    """A ``clickstream`` value as a :class:`ClickEvent`, or :class:`InvalidMessage`."""
    data = _parse("clickstream", value, headers, max_bytes)
    _customer_id(data)
    t = _event_type(data, CLICK_TYPES)
    fields = check_fields(data, _CLICK, "")
    need = CLICK_TYPE_REQUIRES.get(t)
    if need is not None and not fields[need]:
        raise InvalidMessage("missing_field", f"{need} (required by {t})")
    return _new_click(fields)


def decode_order(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> OrderEvent:
    """An ``orders`` value as an :class:`OrderEvent` whose items are :class:`OrderItem`."""
    data = _parse("orders", value, headers, max_bytes)
    _customer_id(data)
    _event_type(data, ORDER_TYPES)
    return _new_order(check_fields(data, _ORDER, ""))


@dataclass(frozen=True, slots=True)
class FieldRejection:
    """One field of a record that was dropped at the input; the rest was used."""

    field: str
    reason: str
    detail: str

    def error(self) -> InvalidMessage:
        """What the dead-letter sink takes: ``dead_letters.send(message, r.error())``.

        The detail says the record was applied anyway: a whole-record ``bad_field``
        letter means the opposite, and replaying an applied record (its consent with
        it) over newer ones is not the same decision as replaying a refused one.
        """
        return InvalidMessage(self.reason, f"{self.detail} (field dropped, rest applied)")


# CR, LF and the other C0/C1 controls. Checked before ``normalise_email``, whose
# ``$``-anchored patterns let a newline through before "@" or a dot; an address is
# never cleaned (a cleaned address is someone else's), only refused.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _email(v: Any, p: str, n: str) -> str:
    """The address as the importers normalise it (IDNA domain), or ``bad_field``."""
    if type(v) is not str:
        raise bad_field(p, n, "a string", v)
    if _CONTROL.search(v):
        raise InvalidMessage("bad_field", f"{p}{n}: control character in {v!r:.80}")
    try:
        return normalise_email(v)
    except RowError as exc:
        raise InvalidMessage("bad_field", f"{p}{n}: {exc}") from None


#: ``customers`` fields whose bad value drops the field, not the record: name, checker.
_CUSTOMER_OWN_FIELDS: tuple[tuple[str, Checker], ...] = (("email", _email),)


def decode_customer_partial(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[CustomerEvent, tuple[FieldRejection, ...]]:
    """A ``customers`` value as a :class:`CustomerEvent`, less any field rejected.

    A rejected field is ``None`` in the event (an upsert keeps the stored value) and
    comes back as a :class:`FieldRejection`. A record that is unusable as a whole
    raises :class:`InvalidMessage` as every decoder does, rejections or not.
    """
    data = _parse("customers", value, headers, max_bytes)
    _customer_id(data)
    rejected: list[FieldRejection] = []
    for name, check in _CUSTOMER_OWN_FIELDS:
        raw = data.get(name)
        if raw is None:
            continue
        try:
            data[name] = check(raw, "", name)
        except InvalidMessage as exc:
            data[name] = None
            rejected.append(FieldRejection(name, exc.reason, exc.detail))
    event = _new_customer(check_fields(data, _CUSTOMER, ""))
    return event, tuple(rejected)


def decode_customer(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> CustomerEvent:
    """A ``customers`` value as a :class:`CustomerEvent` (``consent`` without nulls).

    All or nothing: a field that :func:`decode_customer_partial` would drop raises
    here (what an importer validating its rows wants).
    """
    event, rejected = decode_customer_partial(value, headers, max_bytes)
    if rejected:
        raise InvalidMessage(rejected[0].reason, rejected[0].detail)
    return event


def decode_product(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Product:
    """A ``catalog`` value (keyed by product id) as a :class:`Product`."""
    data = _parse("catalog", value, headers, max_bytes)
    return _new_product(check_fields(data, _PRODUCT, ""))


def decode_seller(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> SellerProfile:
    """A ``sellers`` value as a :class:`SellerProfile`, or :class:`InvalidMessage`."""
    data = _parse("sellers", value, headers, max_bytes)
    if data.get("email") is not None:
        data["email"] = _email(data["email"], "", "email")
    return SellerProfile.from_data(data)


DECODERS: dict[str, Decoder] = {
    "clickstream": decode_click,
    "orders": decode_order,
    "customers": decode_customer,
    "catalog": decode_product,
}

# ---------------------------------------------------------------------------- encoders


def _plain(obj: Any) -> Any:
    if isinstance(obj, faust.Record):
        return {k: _plain(v) for k, v in obj.asdict().items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, faust.Record):
        return obj.asdict()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def encode_json(obj: Mapping[str, Any] | faust.Record) -> bytes:
    """``obj`` as a JSON value (UTF-8); Faust records are written as their fields."""
    return orjson.dumps(obj, default=_json_default)


def encode_avro(topic: str, obj: Mapping[str, Any] | faust.Record) -> bytes:
    """``obj`` as schemaless Avro with ``topic``'s schema; send it with ``AVRO_HEADERS``.

    Optional fields may be left out. Raises ``ValueError`` for an unknown topic and
    fastavro's ``ValueError``/``TypeError`` for a value that does not fit the schema.
    """
    fo = io.BytesIO()
    fastavro.schemaless_writer(fo, load_schema(topic), _plain(obj))
    return fo.getvalue()


__all__ = [
    "AVRO_HEADERS",
    "CLICK_TYPE_REQUIRES",
    "DECODERS",
    "DEFAULT_MAX_BYTES",
    "Decoder",
    "FieldRejection",
    "Headers",
    "InvalidMessage",
    "decode_click",
    "decode_customer",
    "decode_customer_partial",
    "decode_order",
    "decode_product",
    "decode_seller",
    "encode_avro",
    "encode_json",
]
