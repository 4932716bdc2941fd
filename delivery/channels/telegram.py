"""``telegram``: the Bot API's ``sendMessage`` to the customer's ``telegram_chat_id``.

``POST {NUDGE_TELEGRAM_API_URL}/bot<token>/sendMessage`` with JSON ``chat_id``,
``text`` and, when ``NUDGE_TELEGRAM_PARSE_MODE`` is set, ``parse_mode``. The token is
part of the URL, so it is redacted from every detail the request leaves behind.
"""

from __future__ import annotations

from typing import Any

from nudge.delivery.channels.base import Channel, Compose, json_body, require, secret, short_text
from nudge.delivery.channels.http import HttpRequest
from nudge.settings import Settings

#: ``sendMessage`` takes at most this many characters of text.
MAX_TEXT = 4096


def chat_id(recipient: str) -> int | str:
    """A numeric chat id as a number, a ``@channel`` name as it is."""
    return int(recipient) if recipient.lstrip("-").isdigit() else recipient


class Telegram(Channel):
    name = "telegram"
    address_field = "telegram_chat_id"

    def required(self, settings: Settings) -> None:
        require(settings.telegram_bot_token, "NUDGE_TELEGRAM_BOT_TOKEN")

    def request(self, compose: Compose) -> HttpRequest:
        settings = compose.settings
        token = secret(settings.telegram_bot_token)
        payload: dict[str, Any] = {
            "chat_id": chat_id(compose.command.recipient),
            "text": short_text(compose, limit=MAX_TEXT),
        }
        if settings.telegram_parse_mode:
            payload["parse_mode"] = settings.telegram_parse_mode
        url = f"{settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
        headers = {"Content-Type": "application/json"}
        return HttpRequest("POST", url, headers, json_body(payload), secrets=(token,))
