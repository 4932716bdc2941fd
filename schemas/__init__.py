"""Avro schemas of the input topics: the single source of truth for their payloads.

One ``<name>.avsc`` per logical topic (without ``settings.topic_prefix``). JSON payloads
follow the same shape: a field is optional exactly when its schema gives a default.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, cast

import fastavro

SCHEMA_NAMES: tuple[str, ...] = ("clickstream", "orders", "customers", "catalog", "sellers")

_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """Where the ``.avsc`` of topic ``name`` lives."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMA_NAMES)}")
    return _DIR / f"{name}.avsc"


@functools.cache
def load_raw_schema(name: str) -> dict[str, Any]:
    """The schema of topic ``name`` as written in its ``.avsc`` (do not mutate)."""
    with schema_path(name).open("rb") as fh:
        raw: dict[str, Any] = json.load(fh)
    return raw


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed fastavro schema of topic ``name``, cached (do not mutate)."""
    return cast(dict[str, Any], fastavro.parse_schema(load_raw_schema(name), named_schemas={}))


__all__ = ["SCHEMA_NAMES", "load_raw_schema", "load_schema", "schema_path"]
