"""What every channel is: where its address comes from, which settings it needs, and
(for all but email) how a message becomes one HTTP request.

A channel module defines one ``Channel`` subclass; ``channels/__init__.py`` lists them.
Nothing else names a channel: the pipeline, validation, ``channel: auto`` and the flow
schema all read the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from nudge.delivery.channels.http import HttpRequest
from nudge.delivery.defaults import default_message
from nudge.delivery.header_text import one_line
from nudge.delivery.render import Renderer
from nudge.models.commands import SendCommand
from nudge.settings import Settings

#: The built-in text of a short message (sms, telegram, viber) the step leaves out.
SHORT_TEXT = "{{ subject }}\n{{ link }}"


@dataclass(frozen=True, slots=True)
class Compose:
    """What a channel builds its request from."""

    command: SendCommand
    #: what templates see (``context.build_context``)
    context: Mapping[str, Any]
    renderer: Renderer
    #: the message's opaque name (``sent_messages.message_ref``): the idempotency key
    ref: str
    settings: Settings
    now_ms: int


class NotConfigured(Exception):
    """A channel's required setting is unset; ``setting`` names it (``NUDGE_SMS_URL``)."""

    def __init__(self, setting: str, problem: str = "is not set") -> None:
        self.setting = setting
        super().__init__(f"{setting} {problem}")


class Channel:
    name: ClassVar[str]
    #: a message to a person: consent, quiet hours and the frequency cap apply (a
    #: webhook is a call to a system, and is judged like a transactional message)
    personal: ClassVar[bool] = True
    #: the customer field that holds the address (read from the profile, then from
    #: its ``attributes``); empty for a channel addressed by the send step
    address_field: ClassVar[str] = ""
    #: whether ``channel: auto`` may pick it
    automatic: ClassVar[bool] = True

    def address(self, customer: Mapping[str, Any]) -> str | None:
        return customer_field(customer, self.address_field) if self.address_field else None

    def required(self, settings: Settings) -> None:
        """Raise ``NotConfigured`` naming the first missing setting."""

    def check(self, command: SendCommand) -> None:
        """Field checks of a command for this channel; ``InvalidMessage`` dead-letters it.
        The recipient may be empty: it is then looked up when the message is due."""

    def request(self, compose: Compose) -> HttpRequest:
        raise NotImplementedError(f"{self.name} does not send over HTTP")


def customer_field(customer: Mapping[str, Any], name: str) -> str | None:
    """A profile field, else the attribute of that name; None when empty."""
    value = customer.get(name)
    if value in (None, ""):
        attributes = customer.get("attributes")
        value = attributes.get(name) if isinstance(attributes, Mapping) else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    text = str(value).strip()
    return text or None


def secret(value: Any) -> str:
    """A ``SecretStr`` setting's value (call only after ``required`` passed)."""
    return "" if value is None else str(value.get_secret_value())


def require(value: Any, setting: str) -> None:
    if value is None or (hasattr(value, "get_secret_value") and not value.get_secret_value()):
        raise NotConfigured(setting)
    if isinstance(value, str) and not value.strip():
        raise NotConfigured(setting)


def json_body(data: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(data))


def link(compose: Compose) -> str:
    """Where a short message points: the cart, the first product, else the shop."""
    context = compose.context
    if compose.command.kind == "abandoned_cart" and context.get("cart_url"):
        return str(context["cart_url"])
    for item in context.get("items") or ():
        url = item.get("url") if isinstance(item, Mapping) else None
        if url:
            return str(url)
    return str(context.get("shop_url") or "")


def subject(compose: Compose) -> str:
    command = compose.command
    source = (command.message.subject if command.message else None) or (
        default_message(command.kind, command.step).subject or ""
    )
    rendered = compose.renderer.render_field("subject", source, compose.context, is_html=False)
    return one_line(rendered)


def short_text(compose: Compose, *, limit: int) -> str:
    """The step's ``text``, else the subject and a link; for marketing, how to stop."""
    command = compose.command
    title = subject(compose)
    context = {**compose.context, "subject": title, "link": link(compose)}
    source = (command.message.text if command.message else None) or SHORT_TEXT
    text = compose.renderer.render_field("text", source, context, is_html=False).strip()
    stop = compose.context.get("unsubscribe_url")
    tail = f"\n\nUnsubscribe: {stop}" if command.marketing and stop else ""
    if len(text) + len(tail) > limit:
        text = text[: max(limit - len(tail) - 1, 0)] + "\u2026"
    return text + tail
