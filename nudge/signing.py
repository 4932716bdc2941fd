"""Opaque, signed, expiring, URL-safe tokens for links in emails (unsubscribe, confirm).

A token is ``"2" + base64url(AES-SIV(key, body))`` where ``body`` is ``{"p": payload,
"exp": expiry_ms}`` as compact JSON. AES-SIV (RFC 5297, OpenSSL through
``cryptography``) both encrypts and authenticates: the recipient reads nothing in it
(no customer id, no address), and any change to it is refused. It is deterministic, so
the same payload and expiry always give the same token. The key is derived from the
secret with HKDF under this module's own label, so it never equals a key the secret
gives elsewhere.

Tokens minted before (``base64url(body) "." base64url(hmac)``, signed but readable)
are still accepted until they expire: emails already in inboxes keep working.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from nudge.errors import InvalidToken

# Domain separation of the first format's HMAC (still verified, no longer minted).
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


_VERSION = "2"


@functools.lru_cache(maxsize=8)
def _siv(key: bytes) -> AESSIV:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"nudge.signing.v2"
    ).derive(key)
    return AESSIV(derived)


def sign(payload: dict[str, Any], secret: Secret, now_ms: int, ttl_s: float) -> str:
    """An opaque URL-safe token carrying ``payload`` that ``verify`` accepts until
    now + ttl."""
    body = orjson.dumps(
        {"p": payload, "exp": now_ms + int(ttl_s * 1000)}, option=orjson.OPT_SORT_KEYS
    )
    return _VERSION + _b64(_siv(key_bytes(secret)).encrypt(body, None))


def verify(token: str, secret: Secret, now_ms: int) -> dict[str, Any]:
    """The payload of a token minted by ``sign`` with this secret; ``InvalidToken`` else."""
    key = key_bytes(secret)
    if "." in token:
        body = _legacy_body(token, key)
    else:
        if not token.startswith(_VERSION):
            raise InvalidToken("malformed")
        try:
            sealed = _unb64(token[len(_VERSION) :])
        except (ValueError, binascii.Error):
            raise InvalidToken("malformed") from None
        if len(sealed) < 16:
            raise InvalidToken("malformed")
        # Authenticated before anything is parsed: nothing an attacker wrote reaches
        # the JSON parser.
        try:
            body = _siv(key).decrypt(sealed, None)
        except InvalidTag:
            raise InvalidToken("bad_signature") from None
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


def _legacy_body(token: str, key: bytes) -> bytes:
    """The body of a signed-only token of the first format, its HMAC checked."""
    try:
        body_part, mac_part = token.split(".")
        body = _unb64(body_part)
        mac = _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed") from None
    # In constant time, so it leaks nothing by timing.
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise InvalidToken("bad_signature")
    return body


def unsubscribe_payload(customer_id: str, channel: str) -> dict[str, Any]:
    """The payload of an unsubscribe token; the web endpoint checks ``purpose``."""
    return {"purpose": "unsubscribe", "customer_id": customer_id, "channel": channel}


def confirm_payload(customer_id: str, email: str) -> dict[str, Any]:
    """The payload of a double opt-in confirmation token: it confirms this address only,
    so a link mailed to an old address cannot subscribe a new one."""
    return {"purpose": "confirm", "customer_id": customer_id, "email": email}
