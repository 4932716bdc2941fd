"""The abandonment shorthand: ``{id, kind: abandoned_cart, delay, subject, ...}``.

Definitions written before flows existed stay valid. Each expands to a flow with the
``abandoned`` trigger, ``reentry: restart`` (new activity starts the episode over),
a wait of ``delay``, the message, and, given a ``follow_up``, a second wait and
message. The shorthand is as strict as a flow: ``dealy: PT5M`` is an error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from nudge.flows.errors import DefinitionError, problems_of
from nudge.flows.fields import Channel, Duration, Strict, Template
from nudge.flows.steps.send import Recommendations

SHORTHAND_KINDS = ("abandoned_cart", "abandoned_view", "abandoned_category", "abandoned_search")


class FollowUp(Strict):
    delay: Duration = 86_400_000
    subject: Template | None = None
    html: Template | None = None
    text: Template | None = None


class AbandonmentShorthand(Strict):
    id: str
    kind: Literal["abandoned_cart", "abandoned_view", "abandoned_category", "abandoned_search"]
    enabled: bool = True
    delay: Duration = 3_600_000
    channel: Channel = "email"
    subject: Template | None = None
    html: Template | None = None
    text: Template | None = None
    recommendations: Recommendations | None = None
    follow_up: FollowUp | None = None
    expires_after: Duration | None = Field(None, gt=0)


def is_shorthand(data: dict[str, Any]) -> bool:
    return "kind" in data


def expand_shorthand(data: dict[str, Any], label: str) -> dict[str, Any]:
    """The flow a shorthand stands for, as a definition; ``DefinitionError`` if invalid."""
    try:
        short = AbandonmentShorthand.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(label, problems_of(exc)) from None
    message = _message(short.subject, short.html, short.text)
    send: dict[str, Any] = {"channel": short.channel, **message}
    if short.recommendations is not None:
        send["recommendations"] = short.recommendations.model_dump(exclude_none=True)
    steps: list[Any] = [{"wait": _seconds(short.delay)}, {"send": send}]
    if short.follow_up is not None:
        follow = short.follow_up
        steps += [
            {"wait": _seconds(follow.delay)},
            {"send": {**send, **_message(follow.subject, follow.html, follow.text)}},
        ]
    flow: dict[str, Any] = {
        "id": short.id,
        "enabled": short.enabled,
        "class": "marketing",
        "trigger": {"abandoned": short.kind.removeprefix("abandoned_")},
        "reentry": "restart",
        "steps": steps,
    }
    if short.expires_after is not None:
        flow["expires_after"] = _seconds(short.expires_after)
    return flow


def _message(subject: str | None, html: str | None, text: str | None) -> dict[str, str]:
    """Only what the definition sets: the rest falls back to the built-in template."""
    given = {"subject": subject, "html": html, "text": text}
    return {name: value for name, value in given.items() if value is not None}


def _seconds(ms: int) -> float:
    return ms / 1000
