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
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import fastavro
import faust
import orjson
from faust.models.fields import FieldDescriptor

from models.events import (
    CLICK_TYPES,
    ORDER_TYPES,
    ClickEvent,
    CustomerEvent,
    OrderEvent,
    OrderItem,
    Product,
)
from nudge.errors import InvalidMessage
from schemas import load_schema

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
    "category_view": "category_id",
    "search": "query",
}
_NON_NEGATIVE = frozenset({"ts", "quantity", "price"})

# --------------------------------------------------------------------------- checkers
# A checker takes (value, prefix, name), value never None, and returns the value to keep
# or raises ``bad_field``; ``prefix + name`` is only built on failure.
Checker = Callable[[Any, str, str], Any]
R = TypeVar("R", bound=faust.Record)
_Spec = tuple[tuple[str, Checker, bool, Any], ...]  # (name, checker, required, default)


def _bad(prefix: str, name: str, expected: str, value: Any) -> InvalidMessage:
    return InvalidMessage("bad_field", f"{prefix}{name}: expected {expected}, got {value!r:.80}")


def _string(v: Any, p: str, n: str) -> str:
    if type(v) is str:
        return v
    raise _bad(p, n, "a string", v)


def _required_string(v: Any, p: str, n: str) -> str:
    if type(v) is str:
        if v:
            return v
        raise InvalidMessage("missing_field", p + n)
    raise _bad(p, n, "a string", v)


def _long(v: Any, p: str, n: str) -> int:
    if type(v) is int:
        return v
    raise _bad(p, n, "an integer", v)


def _non_negative_long(v: Any, p: str, n: str) -> int:
    if type(v) is int and v >= 0:
        return v
    raise _bad(p, n, "a non-negative integer", v)


def _double(v: Any, p: str, n: str) -> float:
    t = type(v)
    if (t is float or t is int) and math.isfinite(v):
        return float(v)
    raise _bad(p, n, "a finite number", v)


def _non_negative_double(v: Any, p: str, n: str) -> float:
    t = type(v)
    if (t is float or t is int) and math.isfinite(v) and v >= 0:
        return float(v)
    raise _bad(p, n, "a non-negative number", v)


def _boolean(v: Any, p: str, n: str) -> bool:
    if type(v) is bool:
        return v
    raise _bad(p, n, "a boolean", v)


_SCALAR_TYPES = frozenset({type(None), bool, int, float, str})


def _scalar(v: Any, p: str, n: str) -> Any:
    if type(v) in _SCALAR_TYPES:
        return v
    raise _bad(p, n, "a JSON scalar", v)


def _enum(symbols: frozenset[str]) -> Checker:
    expected = "one of " + ", ".join(sorted(symbols))

    def check(v: Any, p: str, n: str) -> str:
        if type(v) is str and v in symbols:
            return v
        raise _bad(p, n, expected, v)

    return check


def _array(item: Checker) -> Checker:
    def check(v: Any, p: str, n: str) -> list[Any]:
        if type(v) is not list:
            raise _bad(p, n, "a list", v)
        return [item(x, p, f"{n}[{i}]") for i, x in enumerate(v)]

    return check


def _map(value: Checker) -> Checker:
    def check(v: Any, p: str, n: str) -> dict[str, Any]:
        if type(v) is not dict:
            raise _bad(p, n, "an object", v)
        return {k: value(x, p, f"{n}.{k}") for k, x in v.items()}

    return check


def _fields(data: dict[str, Any], spec: _Spec, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    get = data.get
    for name, check, required, default in spec:
        v = get(name)
        if v is None:
            if required:
                raise InvalidMessage("missing_field", prefix + name)
            out[name] = default
        else:
            out[name] = check(v, prefix, name)
    return out


def _plain_descriptor(d: Any) -> bool:
    """A descriptor that stores a value as given: no coercion, no tag, no custom set."""
    return (
        isinstance(d, FieldDescriptor)
        and not d.coerce
        and d.tag is None
        and type(d).__set__ is FieldDescriptor.__set__
    )


def _builder(cls: type[R], spec: _Spec) -> Callable[[dict[str, Any]], R]:
    """How to turn validated fields into a ``cls``: ``cls(**fields)``, only faster.

    Faust's generated ``__init__`` sets each field through its descriptor, which costs
    ~5 µs a record. When those descriptors cannot change a value (no coercion, no tag,
    no validation, no ``__post_init__``) and the schema lists exactly the model's fields
    in the model's order, the result of ``__init__`` is a ``__dict__`` holding the fields
    plus an empty ``__evaluated_fields__``: build that directly. Otherwise use ``__init__``.
    """
    opts = cls._options
    fast = (
        not opts.validation
        and not opts.coerce
        and not hasattr(cls, "__post_init__")
        and tuple(opts.fieldpos.values()) == tuple(f[0] for f in spec)
        and all(_plain_descriptor(d) for d in opts.descriptors.values())
    )
    if not fast:
        return lambda fields: cls(**fields)
    new = cls.__new__

    def build(fields: dict[str, Any]) -> R:
        obj = new(cls)
        fields["__evaluated_fields__"] = set()
        obj.__dict__ = fields
        return obj

    return build


def _record(spec: _Spec, cls: type[faust.Record] | None) -> Checker:
    """Nested record: a Faust record of ``cls``, or a dict without its null fields."""
    build = _builder(cls, spec) if cls is not None else None

    def check(v: Any, p: str, n: str) -> Any:
        if type(v) is not dict:
            raise _bad(p, n, "an object", v)
        fields = _fields(v, spec, f"{p}{n}.")
        if build is None:
            return {k: x for k, x in fields.items() if x is not None}
        return build(fields)

    return check


# ------------------------------------------------------------ schema -> validator spec
_PRIMITIVES: dict[str, Checker] = {
    "string": _string,
    "long": _long,
    "int": _long,
    "double": _double,
    "float": _double,
    "boolean": _boolean,
}
_NESTED_CLASSES: dict[str, type[faust.Record]] = {"nudge.events.OrderItem": OrderItem}


def _checker(t: Any, name: str, named: dict[str, Any]) -> Checker:
    if isinstance(t, str):
        if t in named:
            return _checker(named[t], name, named)
        if t in ("long", "int") and name in _NON_NEGATIVE:
            return _non_negative_long
        if t in ("double", "float") and name in _NON_NEGATIVE:
            return _non_negative_double
        return _PRIMITIVES[t]
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        if len(branches) == 1:
            return _checker(branches[0], name, named)
        if all(isinstance(b, str) and b in _PRIMITIVES for b in branches):
            return _scalar
        raise NotImplementedError(f"union {t!r} in field {name!r}")
    kind = t["type"]
    if kind == "enum":
        return _enum(frozenset(t["symbols"]))
    if kind == "array":
        return _array(_checker(t["items"], name, named))
    if kind == "map":
        return _map(_checker(t["values"], name, named))
    if kind == "record":
        return _record(_spec(t, named), _NESTED_CLASSES.get(t["name"]))
    raise NotImplementedError(f"type {t!r} in field {name!r}")


def _spec(record: dict[str, Any], named: dict[str, Any]) -> _Spec:
    spec = []
    for f in record["fields"]:
        name, t = f["name"], f["type"]
        required = "default" not in f
        string = required and t == "string"
        check: Checker = _required_string if string else _checker(t, name, named)
        default = f.get("default")
        if isinstance(default, list | dict):
            raise NotImplementedError(f"mutable default of field {name!r}")
        spec.append((name, check, required, default))
    return tuple(spec)


def _topic_spec(topic: str) -> _Spec:
    schema = load_schema(topic)
    return _spec(schema, schema.get("__named_schemas", {}))


_SPECS: dict[str, _Spec] = {
    name: _topic_spec(name) for name in ("clickstream", "orders", "customers", "catalog")
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
        raise _bad("", "type", "a string", t)
    if t not in allowed:
        raise InvalidMessage("unknown_type", t[:80])
    return t


# ---------------------------------------------------------------------------- decoders
_CLICK = _SPECS["clickstream"]
_ORDER = _SPECS["orders"]
_CUSTOMER = _SPECS["customers"]
_PRODUCT = _SPECS["catalog"]
_new_click = _builder(ClickEvent, _CLICK)
_new_order = _builder(OrderEvent, _ORDER)
_new_customer = _builder(CustomerEvent, _CUSTOMER)
_new_product = _builder(Product, _PRODUCT)


def decode_click(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> ClickEvent:
    """A ``clickstream`` value as a :class:`ClickEvent`, or :class:`InvalidMessage`."""
    data = _parse("clickstream", value, headers, max_bytes)
    _customer_id(data)
    t = _event_type(data, CLICK_TYPES)
    fields = _fields(data, _CLICK, "")
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
    return _new_order(_fields(data, _ORDER, ""))


def decode_customer(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> CustomerEvent:
    """A ``customers`` value as a :class:`CustomerEvent` (``consent`` without nulls)."""
    data = _parse("customers", value, headers, max_bytes)
    _customer_id(data)
    return _new_customer(_fields(data, _CUSTOMER, ""))


def decode_product(
    value: bytes | None, headers: Headers = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Product:
    """A ``catalog`` value (keyed by product id) as a :class:`Product`."""
    data = _parse("catalog", value, headers, max_bytes)
    return _new_product(_fields(data, _PRODUCT, ""))


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
    "Headers",
    "InvalidMessage",
    "decode_click",
    "decode_customer",
    "decode_order",
    "decode_product",
    "encode_avro",
    "encode_json",
]
