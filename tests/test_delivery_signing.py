from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest
from pydantic import SecretStr

from nudge.errors import InvalidToken
from nudge.signing import sign, unsubscribe_payload, verify

NOW = 1_700_000_000_000
PAYLOAD = unsubscribe_payload("c1", "email")


def test_round_trip_is_url_safe() -> None:
    token = sign(PAYLOAD, "s3cret", NOW, 3600)
    assert verify(token, "s3cret", NOW + 1000) == PAYLOAD
    assert all(c.isalnum() or c in "-_" for c in token)


def test_a_token_is_opaque_and_deterministic() -> None:
    payload = unsubscribe_payload("customer-4711", "email")
    token = sign(payload, "k", NOW, 60)
    assert token == sign(payload, "k", NOW, 60)
    raw = base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4))
    for visible in (b"customer-4711", b"4711", b"unsubscribe", b"email", b'"p"'):
        assert visible not in raw and visible.decode() not in token


def legacy_token(payload: dict[str, object], secret: bytes, expires_ms: int) -> str:
    """A token of the first format (signed, readable), as emails already sent carry."""
    body = orjson.dumps({"p": payload, "exp": expires_ms}, option=orjson.OPT_SORT_KEYS)
    mac = hmac.new(secret, b"nudge.signing.v1:" + body, hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(body)}.{b64(mac)}"


def test_tokens_of_the_first_format_still_verify_until_they_expire() -> None:
    token = legacy_token(PAYLOAD, b"k", NOW + 60_000)
    assert verify(token, "k", NOW) == PAYLOAD
    with pytest.raises(InvalidToken) as err:
        verify(token, "k", NOW + 60_000)
    assert err.value.reason == "expired"
    _, mac = token.split(".")
    forged = legacy_token({**PAYLOAD, "customer_id": "c2"}, b"attacker", NOW + 60_000)
    with pytest.raises(InvalidToken) as err:
        verify(f"{forged.split('.')[0]}.{mac}", "k", NOW)
    assert err.value.reason == "bad_signature"


def test_secretstr_and_bytes_secrets_agree() -> None:
    token = sign(PAYLOAD, SecretStr("k"), NOW, 60)
    assert verify(token, b"k", NOW) == PAYLOAD


def test_expired() -> None:
    token = sign(PAYLOAD, "k", NOW, 60)
    with pytest.raises(InvalidToken) as err:
        verify(token, "k", NOW + 60_000)
    assert err.value.reason == "expired"


def test_wrong_secret() -> None:
    with pytest.raises(InvalidToken) as err:
        verify(sign(PAYLOAD, "k", NOW, 60), "other", NOW)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("at", [1, 5, 20, -1])
def test_tampered_token_is_rejected(at: int) -> None:
    token = sign(PAYLOAD, "k", NOW, 60)
    flipped = "A" if token[at] != "A" else "B"
    tampered = token[:at] + flipped + (token[at + 1 :] if at != -1 else "")
    with pytest.raises(InvalidToken) as err:
        verify(tampered, "k", NOW)
    assert err.value.reason in ("bad_signature", "malformed")


def test_a_token_minted_by_an_attacker_is_rejected() -> None:
    forged = sign({**PAYLOAD, "customer_id": "c2"}, "attacker", NOW, 60)
    with pytest.raises(InvalidToken) as err:
        verify(forged, "k", NOW)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "2", "2!!", "a.b.c", "!!!.###", "e30.e30"])
def test_malformed(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(token, "k", NOW)
