"""The one Jinja2 environment factory: sandboxed, because templates arrive on a topic."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from nudge.errors import ConfigError


def make_environment(*, strict: bool = False) -> ImmutableSandboxedEnvironment:
    """A sandbox that cannot reach Python internals nor mutate the context.

    Autoescaping is on for HTML-ish template names; ``render_html`` callers pass
    ``autoescape=True`` explicitly via ``from_string`` on the html environment.
    ``{% trans %}`` and ``_()`` parse everywhere (``jinja2.ext.i18n``); the renderer
    installs the translations, chosen per message by its ``locale``.
    """
    return ImmutableSandboxedEnvironment(
        extensions=["jinja2.ext.i18n"],
        autoescape=select_autoescape(default_for_string=True, default=True),
        undefined=StrictUndefined if strict else Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def check_syntax(source: str, field_name: str) -> None:
    """Raise ``ConfigError`` naming the field and line when a template does not compile."""
    try:
        make_environment().parse(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{field_name}: line {exc.lineno}: {exc.message}") from exc


def as_record(data: Mapping[str, Any]) -> SimpleNamespace:
    """A mapping whose keys templates read as attributes before dict methods:
    ``{{ order.items }}`` is the order's items, not ``dict.items``."""
    return SimpleNamespace(**{str(k): v for k, v in data.items()})
