"""``DefinitionError``: every problem of a definition, each with its path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError

from nudge.errors import ConfigError

#: Union tags pydantic puts in an error's location that the writer never wrote.
_HIDDEN_TAGS = frozenset({"duration"})


class DefinitionError(ConfigError):
    """A definition that cannot be applied; ``problems`` are ``(path, message)``."""

    def __init__(self, flow_id: str, problems: Iterable[tuple[str, str]]) -> None:
        self.flow_id = flow_id
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.flow_id}.{path}: {message}" if path else f"{self.flow_id}: {message}"
            for path, message in self.problems
        ]


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors as ``(path, message)``, in the words of the definition."""
    from nudge.flows.vocabulary import known_fields

    problems = []
    for error in exc.errors():
        path = format_path(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            field = str(error["loc"][-1])
            close = difflib.get_close_matches(field, known_fields(), n=1, cutoff=0.75)
            message = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif error["type"] == "missing":
            message = "required field missing"
        problems.append((path, message))
    return problems


def format_path(loc: tuple[int | str, ...]) -> str:
    """``('steps', 2, 'wait_for', 'wait_for', 'timeout')`` -> ``steps[2].wait_for.timeout``.

    A tagged union repeats the tag before the field of the same name; a tag the writer
    never wrote (``duration``) is dropped.
    """
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item != previous and item not in _HIDDEN_TAGS:
            parts.append(("." if parts else "") + _written(item))
        previous = item
    return "".join(parts)


def _written(name: str) -> str:
    # Python-side names of fields that are keywords in the definition.
    return {"class_": "class", "if_": "if", "else_": "else", "for_": "for"}.get(name, name)
