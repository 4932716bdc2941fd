from __future__ import annotations

import pytest
from pydantic import SecretStr

from nudge.errors import InvalidToken
from nudge.signing import sign, unsubscribe_payload, verify

NOW = 1_700_000_000_000
PAYLOAD = unsubscribe_payload("c1", "email")


def test_round_trip_is_url_safe() -> None:
    token = sign(PAYLOAD, "s3cret", NOW, 3600)
    assert verify(token, "s3cret", NOW + 1000) == PAYLOAD
    assert all(c.isalnum() or c in "-_." for c in token)


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


def test_tampered_payload_is_rejected() -> None:
    _, mac = sign(PAYLOAD, "k", NOW, 60).split(".")
    forged = sign({**PAYLOAD, "customer_id": "c2"}, "attacker", NOW, 60).split(".")[0]
    with pytest.raises(InvalidToken) as err:
        verify(f"{forged}.{mac}", "k", NOW)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.###", "e30.e30"])
def test_malformed(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(token, "k", NOW)
