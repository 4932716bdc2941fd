"""Payload validators derived from the Avro schemas in ``schemas/``.

A field is required exactly when its schema gives no default; every checker either
returns the value to keep or raises ``InvalidMessage("bad_field", ...)``. The specs
are built once, at import time, so the schemas stay the single source of truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import faust
from faust.models.fields import FieldDescriptor

from nudge.errors import InvalidMessage
from nudge.models.events import OrderItem
from nudge.schemas import load_schema

_NON_NEGATIVE = frozenset({"ts", "quantity", "price"})

# --------------------------------------------------------------------------- checkers
# A checker takes (value, prefix, name), value never None, and returns the value to keep
# or raises ``bad_field``; ``prefix + name`` is only built on failure.
Checker = Callable[[Any, str, str], Any]
R = TypeVar("R", bound=faust.Record)
Spec = tuple[tuple[str, Checker, bool, Any], ...]  # (name, checker, required, default)


def bad_field(prefix: str, name: str, expected: str, value: Any) -> InvalidMessage:
    return InvalidMessage("bad_field", f"{prefix}{name}: expected {expected}, got {value!r:.80}")


def _string(v: Any, p: str, n: str) -> str:
    if type(v) is str:
        return v
    raise bad_field(p, n, "a string", v)


def _required_string(v: Any, p: str, n: str) -> str:
    if type(v) is str:
        if v:
            return v
        raise InvalidMessage("missing_field", p + n)
    raise bad_field(p, n, "a string", v)


def _long(v: Any, p: str, n: str) -> int:
    if type(v) is int:
        return v
    raise bad_field(p, n, "an integer", v)


def _non_negative_long(v: Any, p: str, n: str) -> int:
    if type(v) is int and v >= 0:
        return v
    raise bad_field(p, n, "a non-negative integer", v)


def _double(v: Any, p: str, n: str) -> float:
    t = type(v)
    if (t is float or t is int) and math.isfinite(v):
        return float(v)
    raise bad_field(p, n, "a finite number", v)


def _non_negative_double(v: Any, p: str, n: str) -> float:
    t = type(v)
    if (t is float or t is int) and math.isfinite(v) and v >= 0:
        return float(v)
    raise bad_field(p, n, "a non-negative number", v)


def _boolean(v: Any, p: str, n: str) -> bool:
    if type(v) is bool:
        return v
    raise bad_field(p, n, "a boolean", v)


_SCALAR_TYPES = frozenset({type(None), bool, int, float, str})


def _scalar(v: Any, p: str, n: str) -> Any:
    if type(v) in _SCALAR_TYPES:
        return v
    raise bad_field(p, n, "a JSON scalar", v)


def _enum(symbols: frozenset[str]) -> Checker:
    expected = "one of " + ", ".join(sorted(symbols))

    def check(v: Any, p: str, n: str) -> str:
        if type(v) is str and v in symbols:
            return v
        raise bad_field(p, n, expected, v)

    return check


def _array(item: Checker) -> Checker:
    def check(v: Any, p: str, n: str) -> list[Any]:
        if type(v) is not list:
            raise bad_field(p, n, "a list", v)
        return [item(x, p, f"{n}[{i}]") for i, x in enumerate(v)]

    return check


def _map(value: Checker) -> Checker:
    def check(v: Any, p: str, n: str) -> dict[str, Any]:
        if type(v) is not dict:
            raise bad_field(p, n, "an object", v)
        return {k: value(x, p, f"{n}.{k}") for k, x in v.items()}

    return check


def check_fields(data: dict[str, Any], spec: Spec, prefix: str) -> dict[str, Any]:
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


def builder(cls: type[R], spec: Spec) -> Callable[[dict[str, Any]], R]:
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


def _record(spec: Spec, cls: type[faust.Record] | None) -> Checker:
    """Nested record: a Faust record of ``cls``, or a dict without its null fields."""
    build = builder(cls, spec) if cls is not None else None

    def check(v: Any, p: str, n: str) -> Any:
        if type(v) is not dict:
            raise bad_field(p, n, "an object", v)
        fields = check_fields(v, spec, f"{p}{n}.")
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


def _spec(record: dict[str, Any], named: dict[str, Any]) -> Spec:
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


def topic_spec(topic: str) -> Spec:
    schema = load_schema(topic)
    return _spec(schema, schema.get("__named_schemas", {}))


SPECS: dict[str, Spec] = {
    name: topic_spec(name) for name in ("clickstream", "orders", "customers", "catalog")
}
