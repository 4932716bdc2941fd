"""Every field name a definition may use, for "did you mean" hints."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel


@cache
def known_fields() -> tuple[str, ...]:
    from nudge.flows.definition import Flow
    from nudge.flows.shorthand import AbandonmentShorthand

    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    stack: list[type[BaseModel]] = [Flow, AbandonmentShorthand]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
        stack.extend(_models_in(model))
    return tuple(sorted(names))


def _models_in(model: type[BaseModel]) -> list[type[BaseModel]]:
    from nudge.flows.steps import STEP_TYPES
    from nudge.flows.triggers import TRIGGER_TYPES

    found = [*STEP_TYPES.values(), *TRIGGER_TYPES.values()] if model.__name__ == "Flow" else []
    for info in model.model_fields.values():
        found.extend(_classes(info.annotation))
    return found


def _classes(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for arg in getattr(annotation, "__args__", ()) for c in _classes(arg)]
