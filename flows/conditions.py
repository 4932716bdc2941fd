"""Conditions (``filter``, ``where``, ``if``) evaluated in Jinja2's sandbox.

They see ``customer`` (the profile with consent, attributes, tags and ``stats``),
``event`` (the triggering or awaited event), ``order`` (in order flows) and ``run``
(``started_at``, ``variant``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SecurityError

from nudge.models.state import CustomerState, Run
from nudge.templating import make_environment

_ENV = make_environment()


class ConditionFailed(Exception):
    """A condition that could not be evaluated: the step it guards is skipped."""

    def __init__(self, source: str, error: Exception) -> None:
        self.source = source
        super().__init__(f"condition {source!r} failed: {type(error).__name__}: {error}")


@lru_cache(maxsize=2048)
def _compiled(source: str) -> Any:
    return _ENV.compile_expression(source)


def holds(source: str, variables: dict[str, Any]) -> bool:
    try:
        return bool(_compiled(source)(**variables))
    except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
        raise ConditionFailed(source, exc) from exc


def customer_variables(state: CustomerState) -> dict[str, Any]:
    customer = state.profile.as_context(state.customer_id)
    customer["stats"] = {
        "orders_count": state.orders,
        "total_spent": state.total_spent,
        "first_order_at": state.first_order_ms or None,
        "last_order_at": state.last_order_ms or None,
        "first_seen_at": state.created_ms or None,
    }
    return customer


def variables(
    state: CustomerState, run: Run | None = None, event: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload = run.payload if run is not None else {}
    event = event if event is not None else payload.get("event")
    found: dict[str, Any] = {"customer": customer_variables(state), "event": event or {}}
    if event and event.get("order_id"):
        found["order"] = event
    if run is not None:
        found["run"] = {"started_at": run.episode, "variant": run.variant}
    return found
