"""``sms``: a generic HTTP SMS gateway, to the customer's ``phone``.

``POST NUDGE_SMS_URL`` with JSON ``{to, text, sender?}``; ``NUDGE_SMS_AUTH_HEADER``
(``Name: value``, e.g. ``Authorization: Bearer ...``) goes with it when set. Gateways
that want another shape sit behind a small adapter, or use ``channel: webhook``.
"""

from __future__ import annotations

from typing import Any

from nudge.delivery.channels.base import (
    Channel,
    Compose,
    NotConfigured,
    json_body,
    require,
    secret,
    short_text,
)
from nudge.delivery.channels.http import HttpRequest
from nudge.settings import Settings

#: Ten concatenated parts of 153 GSM-7 characters: more is a mistake, not a message.
MAX_TEXT = 1530


def auth_header(value: str) -> tuple[str, str]:
    """``Name: value`` split; ``NotConfigured`` for anything else (or a line break)."""
    name, colon, rest = value.partition(":")
    if not colon or not name.strip() or not rest.strip() or "\r" in value or "\n" in value:
        raise NotConfigured("NUDGE_SMS_AUTH_HEADER", "must be 'Name: value' on one line")
    return name.strip(), rest.strip()


class Sms(Channel):
    name = "sms"
    address_field = "phone"

    def required(self, settings: Settings) -> None:
        require(settings.sms_url, "NUDGE_SMS_URL")
        if settings.sms_auth_header is not None:
            auth_header(secret(settings.sms_auth_header))

    def request(self, compose: Compose) -> HttpRequest:
        settings = compose.settings
        payload: dict[str, Any] = {
            "to": compose.command.recipient,
            "text": short_text(compose, limit=MAX_TEXT),
        }
        if settings.sms_sender:
            payload["sender"] = settings.sms_sender
        headers = {"Content-Type": "application/json"}
        secrets: tuple[str, ...] = ()
        if settings.sms_auth_header is not None:
            name, value = auth_header(secret(settings.sms_auth_header))
            headers[name] = value
            secrets = (value,)
        assert settings.sms_url is not None  # ``required`` saw to it
        return HttpRequest("POST", settings.sms_url, headers, json_body(payload), secrets=secrets)
