"""Flows: multi-step customer journeys, defined as data on ``trigger-config``.

The public surface: ``parse_flow`` reads a definition (a flow or an abandonment
shorthand) into a ``Flow``, or raises ``DefinitionError`` naming every problem with
its path; ``flow_json_schema`` is the JSON Schema editors check YAML files with.
"""

from nudge.flows.definition import Flow, flow_version, parse_flow, walk_steps
from nudge.flows.errors import DefinitionError
from nudge.flows.schema import flow_json_schema

__all__ = [
    "DefinitionError",
    "Flow",
    "flow_json_schema",
    "flow_version",
    "parse_flow",
    "walk_steps",
]
