"""``push``: Web Push (RFC 8030) with VAPID (RFC 8292), to the customer's browser.

The customer's ``push_subscription`` is what the browser's ``PushManager.subscribe``
gave: ``{endpoint, keys: {p256dh, auth}}`` (a profile attribute holds it as a JSON
string). The payload, JSON ``{title, body, url}``, is encrypted for that subscription
with ``aes128gcm`` (RFC 8291, through ``pywebpush``) and POSTed to its endpoint with
``TTL``, ``Content-Encoding: aes128gcm`` and ``Authorization: vapid t=<JWT>,k=<key>``
signed with ``NUDGE_VAPID_PRIVATE_KEY_FILE`` for ``NUDGE_VAPID_SUBJECT``. A 404 or 410
means the subscription is gone: the message fails with that status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from nudge.delivery.channels.base import Channel, Compose, NotConfigured, link, require, subject
from nudge.delivery.channels.http import HttpRequest
from nudge.delivery.defaults import default_message
from nudge.errors import PermanentError
from nudge.settings import Settings

#: Push services take about 4 KB of payload; the body is cut well below that.
MAX_BODY = 1000
#: How long a VAPID token is valid (the spec allows up to 24 hours).
TOKEN_LIFE_S = 12 * 3600


class BadSubscription(PermanentError):
    reason = "bad_push_subscription"


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def subscription(recipient: str) -> Subscription:
    """The subscription a recipient holds (its JSON); ``BadSubscription`` if it is not one."""
    try:
        data = orjson.loads(recipient)
        keys = data["keys"]
        found = Subscription(str(data["endpoint"]), str(keys["p256dh"]), str(keys["auth"]))
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise BadSubscription(f"not a push subscription: {type(exc).__name__}") from None
    if urlsplit(found.endpoint).scheme not in ("https", "http"):
        raise BadSubscription("a push subscription's endpoint must be an http(s) URL")
    return found


def content(compose: Compose) -> dict[str, str]:
    """Title, body and url: the subject, the step's text (else the preheader), a link."""
    command = compose.command
    title = subject(compose)
    source = (command.message.text if command.message else None) or ""
    if not source:
        source = default_message(command.kind, command.step).preheader or ""
    context = {**compose.context, "subject": title}
    body = compose.renderer.render_field("text", source, context, is_html=False).strip()
    if not body:  # what the message is about: its products
        titles = [str(i.get("title")) for i in compose.context.get("items") or () if i.get("title")]
        body = ", ".join(titles[:3])
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 1] + "\u2026"
    return {"title": title, "body": body, "url": link(compose)}


class Push(Channel):
    name = "push"
    address_field = "push_subscription"

    def __init__(self) -> None:
        self._keys: dict[Path, Vapid] = {}

    def required(self, settings: Settings) -> None:
        require(settings.vapid_private_key_file, "NUDGE_VAPID_PRIVATE_KEY_FILE")
        require(settings.vapid_subject, "NUDGE_VAPID_SUBJECT")
        self._key(settings)

    def _key(self, settings: Settings) -> Vapid:
        path = settings.vapid_private_key_file
        assert path is not None
        key = self._keys.get(path)
        if key is None:
            # Not ``Vapid.from_file``: for a missing file it makes and saves a new key,
            # which would sign for an identity no subscription was made with.
            try:
                key = Vapid.from_pem(path.read_bytes())
            except Exception:  # missing, unreadable or not a key: the same fix
                raise NotConfigured(
                    "NUDGE_VAPID_PRIVATE_KEY_FILE", f"{path} holds no PEM EC private key"
                ) from None
            self._keys[path] = key
        return key

    def address(self, customer: Mapping[str, Any]) -> str | None:
        found = super().address(customer)
        return found if found and found != "{}" else None

    def request(self, compose: Compose) -> HttpRequest:
        settings = compose.settings
        sub = subscription(compose.command.recipient)
        data = orjson.dumps(content(compose))
        try:
            body = WebPusher(sub.info()).encode(data, content_encoding="aes128gcm")["body"]
        except (WebPushException, ValueError, TypeError) as exc:
            raise BadSubscription(f"cannot encrypt for this subscription: {exc}") from None
        endpoint = urlsplit(sub.endpoint)
        claims = {
            "sub": settings.vapid_subject,
            "aud": f"{endpoint.scheme}://{endpoint.netloc}",
            "exp": compose.now_ms // 1000 + TOKEN_LIFE_S,
        }
        headers = {
            **self._key(settings).sign(claims),
            "TTL": str(settings.push_ttl_s),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "normal",
        }
        return HttpRequest("POST", sub.endpoint, headers, bytes(body))
