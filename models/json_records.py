"""Reading the JSON records of the internal topics: one object, or a named error."""

from __future__ import annotations

from typing import Any

import orjson

from nudge.errors import InvalidMessage


def json_object(raw: bytes | None, what: str) -> dict[str, Any]:
    """The record as a dict; ``InvalidMessage`` (a dead-letter reason) otherwise."""
    if not raw:
        raise InvalidMessage("empty_payload")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage("malformed_json", str(exc)[:200]) from exc
    if type(data) is not dict:
        raise InvalidMessage("not_an_object", f"{what}: {type(data).__name__}")
    return data
