"""Signed, expiring, URL-safe tokens for links in emails (unsubscribe, click tracking).

A token is ``base64url(body) "." base64url(hmac_sha256(key, body))`` where ``body`` is
``{"p": payload, "exp": expiry_ms}`` as compact JSON. It is signed, not encrypted: the
payload is readable by the recipient, so put ids in it, never secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson
from pydantic import SecretStr

from nudge.errors import InvalidToken

# Domain separation: a token minted here can never be confused with an HMAC the same
# secret produces elsewhere (e.g. a future webhook signature).
_CONTEXT = b"nudge.signing.v1:"

Secret = str | bytes | SecretStr


def key_bytes(secret: Secret) -> bytes:
    """The secret as key bytes; an empty secret is a ``ValueError``."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("signing secret must not be empty")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + body, hashlib.sha256).digest()


def sign(payload: dict[str, Any], secret: Secret, now_ms: int, ttl_s: float) -> str:
    """A URL-safe token carrying ``payload`` that ``verify`` accepts until now + ttl."""
    body = orjson.dumps(
        {"p": payload, "exp": now_ms + int(ttl_s * 1000)}, option=orjson.OPT_SORT_KEYS
    )
    return f"{_b64(body)}.{_b64(_mac(key_bytes(secret), body))}"


def verify(token: str, secret: Secret, now_ms: int) -> dict[str, Any]:
    """The payload of a token minted by ``sign`` with this secret; ``InvalidToken`` else."""
    try:
        body_part, mac_part = token.split(".")
        body = _unb64(body_part)
        mac = _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed") from None
    # The signature is checked before the body is parsed, so nothing an attacker wrote
    # reaches the JSON parser, and in constant time so it leaks nothing by timing.
    if not hmac.compare_digest(mac, _mac(key_bytes(secret), body)):
        raise InvalidToken("bad_signature")
    try:
        data = orjson.loads(body)
        payload, expires = data["p"], int(data["exp"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InvalidToken("malformed") from None
    if not isinstance(payload, dict):
        raise InvalidToken("malformed")
    if now_ms >= expires:
        raise InvalidToken("expired")
    return payload


def unsubscribe_payload(customer_id: str, channel: str) -> dict[str, Any]:
    """The payload of an unsubscribe token; the web endpoint checks ``purpose``."""
    return {"purpose": "unsubscribe", "customer_id": customer_id, "channel": channel}


def confirm_payload(customer_id: str, email: str) -> dict[str, Any]:
    """The payload of a double opt-in confirmation token: it confirms this address only,
    so a link mailed to an old address cannot subscribe a new one."""
    return {"purpose": "confirm", "customer_id": customer_id, "email": email}
