"""The .avsc files are the source of truth: they parse, and the Faust records mirror them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import fastavro
import faust
import pytest

import nudge.schemas as schemas
from nudge.models.events import (
    CONSENT_VALUES,
    ClickEvent,
    Consent,
    CustomerEvent,
    OrderEvent,
    OrderItem,
    Product,
)
from nudge.models.sellers import SellerProfile
from nudge.schemas import SCHEMA_NAMES, load_raw_schema, load_schema

RECORDS: dict[str, type[Any]] = {
    "clickstream": ClickEvent,
    "orders": OrderEvent,
    "customers": CustomerEvent,
    "catalog": Product,
    "sellers": SellerProfile,
}
PY_OF_AVRO: dict[str, Any] = {"string": str, "long": int, "double": float, "boolean": bool}


def _fields(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in record["fields"]}


def _nested(topic: str, field: str) -> dict[str, Any]:
    t = _fields(load_raw_schema(topic))[field]["type"]
    if isinstance(t, list):
        (t,) = [b for b in t if b != "null"]
    return t["items"] if t["type"] == "array" else t


def _model_fields(cls: type[Any]) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(cls._options.fields)


def test_schema_names_match_files() -> None:
    here = Path(schemas.__file__).parent
    assert sorted(p.stem for p in here.glob("*.avsc")) == sorted(SCHEMA_NAMES)
    assert set(RECORDS) == set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_parses_with_fastavro(name: str) -> None:
    parsed = fastavro.parse_schema(load_raw_schema(name), named_schemas={})
    assert isinstance(parsed, dict) and parsed["type"] == "record"
    assert load_schema(name) is load_schema(name)  # cached
    assert load_schema(name)["name"] == f"nudge.events.{RECORDS[name].__name__}"


def test_unknown_schema_name() -> None:
    with pytest.raises(ValueError, match="unknown schema"):
        load_schema("nope")


@pytest.mark.parametrize(
    ("cls", "record"),
    [
        (ClickEvent, lambda: load_raw_schema("clickstream")),
        (OrderEvent, lambda: load_raw_schema("orders")),
        (OrderItem, lambda: _nested("orders", "items")),
        (CustomerEvent, lambda: load_raw_schema("customers")),
        (Consent, lambda: _nested("customers", "consent")),
        (Product, lambda: load_raw_schema("catalog")),
        (SellerProfile, lambda: load_raw_schema("sellers")),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_every_model_field_is_in_the_schema(cls: type[faust.Record], record: Any) -> None:
    schema = record()
    assert schema["name"] == cls.__name__
    avsc = _fields(schema)
    missing = [name for name in _model_fields(cls) if name not in avsc]
    assert not missing, f"{cls.__name__} fields missing from the .avsc: {missing}"
    extra = [name for name in avsc if name not in _model_fields(cls)]
    assert not extra, f".avsc fields the {cls.__name__} record would drop: {extra}"
    # Same order too: the codec's fast record construction relies on it.
    assert list(avsc) == _model_fields(cls)

    hints = get_type_hints(cls)
    for name, f in avsc.items():
        t = f["type"]
        nullable = isinstance(t, list) and "null" in t
        if nullable:
            assert t[0] == "null" and f.get("default", "absent") is None, name
            (t,) = [b for b in t if b != "null"]
        base = PY_OF_AVRO.get(t) if isinstance(t, str) else None
        if base is not None:  # primitive: the Python annotation must agree
            assert hints[name] == (base | None if nullable else base), name


def test_required_fields_follow_the_contract() -> None:
    def required(topic: str) -> set[str]:
        return {n for n, f in _fields(load_raw_schema(topic)).items() if "default" not in f}

    assert required("clickstream") == {"event_id", "type", "customer_id", "ts"}
    assert required("orders") == {
        "event_id", "type", "order_id", "customer_id", "ts", "items", "total", "currency"
    }  # fmt: skip
    assert required("customers") == {"event_id", "customer_id", "ts"}
    assert required("catalog") == {
        "product_id", "title", "url", "price", "currency", "category_ids", "available"
    }  # fmt: skip
    assert _fields(load_raw_schema("orders"))["historical"]["default"] is False


def test_consent_enum_matches_model() -> None:
    consent = _nested("customers", "consent")
    enum = _fields(consent)["email"]["type"][1]
    assert set(enum["symbols"]) == CONSENT_VALUES
    assert _fields(consent)["sms"]["type"] == ["null", "ConsentValue"]


def test_attributes_are_a_map_of_scalars() -> None:
    t = _fields(load_raw_schema("customers"))["attributes"]["type"]
    assert t[0] == "null"
    assert t[1] == {"type": "map", "values": ["null", "boolean", "long", "double", "string"]}
