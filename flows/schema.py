"""The JSON Schema of a definition, published as ``schemas/flow.schema.json``.

A file on ``trigger-config`` holds a flow or an abandonment shorthand; editors with
YAML schema support (``# yaml-language-server: $schema=...``) check both as they are
typed. ``nudge triggers schema`` prints it; a test keeps the published copy current.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from nudge.flows.definition import Flow
from nudge.flows.shorthand import AbandonmentShorthand


def flow_json_schema() -> dict[str, Any]:
    schema = TypeAdapter(Flow | AbandonmentShorthand).json_schema(
        mode="validation", ref_template="#/$defs/{model}"
    )
    _written_defaults(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://nudge.dev/schemas/flow.schema.json",
        "title": "nudge flow definition",
        "description": "A flow on trigger-config, or an abandonment shorthand (with 'kind').",
        **schema,
    }


def flow_json_schema_text() -> str:
    """The schema as published: sorted keys, two-space indents, a final newline."""
    return json.dumps(flow_json_schema(), indent=2, sort_keys=True) + "\n"


def _written_defaults(node: Any) -> None:
    """Durations are held in milliseconds; their defaults are shown as written."""
    if isinstance(node, dict):
        default = node.get("default")
        described = str(node.get("description", ""))
        if "ISO 8601 duration" in described and isinstance(default, int) and default:
            node["default"] = _iso(default)
        for value in node.values():
            _written_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _written_defaults(value)


def _iso(ms: int) -> str:
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
