"""``viber``: the Viber REST API's ``send_message`` to the customer's ``viber_id``.

``POST {NUDGE_VIBER_API_URL}/send_message`` with header ``X-Viber-Auth-Token`` and JSON
``receiver``, ``type: "text"``, ``text``, ``sender: {name}``. Viber answers 200 for
its own errors too, with a non-zero ``status`` in the body: those are judged here.
"""

from __future__ import annotations

from email.utils import parseaddr

import orjson

from nudge.delivery.channels.base import Channel, Compose, json_body, require, secret, short_text
from nudge.delivery.channels.http import HttpAnswer, HttpRejected, HttpRequest, excerpt
from nudge.settings import Settings

#: Viber's limit on a text message.
MAX_TEXT = 7000
#: ``sender.name`` is at most 28 characters.
MAX_SENDER = 28


def sender_name(settings: Settings) -> str:
    name = settings.viber_sender_name or parseaddr(settings.mail_from)[0] or "Shop"
    return name[:MAX_SENDER]


def judge_status(answer: HttpAnswer) -> None:
    """A 200 whose body says ``status`` other than 0 is Viber's refusal."""
    try:
        status = orjson.loads(answer.body).get("status", 0)
    except (orjson.JSONDecodeError, AttributeError):
        return
    if isinstance(status, int) and status != 0:
        raise HttpRejected(answer.status, f"Viber status {status}: {excerpt(answer.body)}")


class Viber(Channel):
    name = "viber"
    address_field = "viber_id"

    def required(self, settings: Settings) -> None:
        require(settings.viber_auth_token, "NUDGE_VIBER_AUTH_TOKEN")

    def request(self, compose: Compose) -> HttpRequest:
        settings = compose.settings
        token = secret(settings.viber_auth_token)
        payload = {
            "receiver": compose.command.recipient,
            "type": "text",
            "text": short_text(compose, limit=MAX_TEXT),
            "sender": {"name": sender_name(settings)},
        }
        url = f"{settings.viber_api_url.rstrip('/')}/send_message"
        headers = {"Content-Type": "application/json", "X-Viber-Auth-Token": token}
        return HttpRequest(
            "POST", url, headers, json_body(payload), secrets=(token,), accept=judge_status
        )
