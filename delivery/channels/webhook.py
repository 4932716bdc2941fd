"""``webhook``: an HTTP call to a system, signed per the Standard Webhooks spec.

The send step gives ``{url, method, headers, body}``; ``body`` is a Jinja2 template
rendered in the sandbox like every other template (without it, a JSON document of the
message). Each call carries ``webhook-id`` (the message's opaque ref, the same on every
try), ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` with ``NUDGE_WEBHOOK_SECRET``), and ``Idempotency-Key`` (the ref
again): a receiver that dedupes by it makes retrying a timed-out call safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook as Signer

from nudge.delivery.channels.base import (
    Channel,
    Compose,
    NotConfigured,
    require,
    secret,
    subject,
)
from nudge.delivery.channels.http import HttpRequest
from nudge.errors import InvalidMessage
from nudge.models.commands import SendCommand
from nudge.settings import Settings


def signer(settings: Settings) -> Signer:
    try:
        return Signer(secret(settings.webhook_secret))
    except Exception:  # not base64, or empty: the same fix
        raise NotConfigured("NUDGE_WEBHOOK_SECRET", "is not a whsec_<base64> secret") from None


def default_body(compose: Compose) -> dict[str, Any]:
    command, context = compose.command, compose.context
    customer = context.get("customer") or {}
    return {
        "message_id": compose.ref,
        "flow_id": command.trigger_id,
        "kind": command.kind,
        "step": command.step,
        "customer_id": command.customer_id,
        "email": customer.get("email") if isinstance(customer, Mapping) else None,
        "subject": subject(compose),
        "items": [dict(item) for item in context.get("items") or ()],
        "variant": command.variant,
    }


class Webhook(Channel):
    name = "webhook"
    personal = False
    automatic = False

    def required(self, settings: Settings) -> None:
        require(settings.webhook_secret, "NUDGE_WEBHOOK_SECRET")
        signer(settings)

    def check(self, command: SendCommand) -> None:
        if command.webhook is None:
            raise InvalidMessage("bad_send_command", "a webhook command needs its webhook")
        if not command.recipient:
            raise InvalidMessage("bad_recipient", "a webhook command's recipient is its url")
        wrong = command.webhook.problem()
        if wrong is not None:
            raise InvalidMessage("bad_webhook", wrong)

    def request(self, compose: Compose) -> HttpRequest:
        call = compose.command.webhook
        assert call is not None  # ``check`` saw to it
        if call.body is not None:
            body = compose.renderer.render_field(
                "webhook.body", call.body, compose.context, is_html=False
            )
        else:
            body = orjson.dumps(default_body(compose), default=str).decode()
        key = secret(compose.settings.webhook_secret)
        moment = datetime.fromtimestamp(compose.now_ms // 1000, tz=UTC)
        headers = {"Content-Type": "application/json"}
        headers.update({name: str(value) for name, value in call.headers.items()})
        headers.update(
            {
                "webhook-id": compose.ref,
                "webhook-timestamp": str(compose.now_ms // 1000),
                "webhook-signature": signer(compose.settings).sign(compose.ref, moment, body),
                "Idempotency-Key": compose.ref,
            }
        )
        return HttpRequest(
            call.method.upper(),
            call.url,
            headers,
            body.encode(),
            idempotent=True,
            secrets=(key,),
        )
