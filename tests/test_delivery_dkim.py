"""DKIM signing: dkimpy's verifier is the judge, dkimpy's signer the reference."""

from __future__ import annotations

import base64
import os
import random
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import Relaxed
from dkim.util import parse_tag_value

from nudge.cli.main import main
from nudge.delivery.dkim import (
    DkimError,
    DkimSigner,
    canonical_body,
    canonical_headers,
    generate_key,
    private_key_pem,
)
from nudge.delivery.message import build_message
from nudge.delivery.render import Rendered
from nudge.errors import ConfigError
from nudge.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOMAIN, SELECTOR = "shop.example", "nudge1"
NOW_S = 1_700_000_000
UNSUB = "https://nudge.shop.example/unsubscribe/" + "t" * 180 + ".sig"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> DkimSigner:
    return DkimSigner(DOMAIN, SELECTOR, key)


def dns_for(key: rsa.RSAPrivateKey, selector: str = SELECTOR, domain: str = DOMAIN) -> Any:
    """A ``dnsfunc`` for dkimpy that publishes ``key`` where receivers look for it."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{selector}._domainkey.{domain}.".encode() else None

    return dnsfunc


def email(
    subject: str = "Your cart is waiting",
    *,
    unsubscribe_url: str | None = UNSUB,
    mail_from: str = "Demo Shop <news@shop.example>",
    recipient_name: str | None = None,
    text: str = "Hello Ann,\nyour Blue Mug is still in your cart.\n",
    html: str = "<p>Hello Ann,</p>\n<p>your <b>Blue Mug</b> is still in your cart.</p>\n",
) -> bytes:
    out = build_message(
        Rendered(subject=subject, html=html, text=text),
        command_id="cart:c1:1699996400000:0",
        mail_from=mail_from,
        recipient="ann@example.com",
        unsubscribe_url=unsubscribe_url,
        now_ms=NOW_S * 1000,
        recipient_name=recipient_name,
        ref="q3v5bqkx2l7m4d2hy6a5p3t4ze",
        bounce_domain="bounces.shop.example",
    )
    return out.data


def tags(signed: bytes) -> dict[bytes, bytes]:
    field = re.match(rb"DKIM-Signature:(.*?)\r\n(?! )", signed, re.S)
    assert field is not None
    return parse_tag_value(re.sub(rb"\r\n\s", b"", field.group(1)).strip())


MESSAGES: dict[str, Callable[[], bytes]] = {
    "ascii": email,
    "non_ascii_subject_and_names": lambda: email(
        "Grüße aus München — Ihr Warenkorb wartet 🛒",
        mail_from="Schöne Dinge GmbH <news@shop.example>",
        recipient_name="Zoë Ångström",
    ),
    "long_folded_subject": lambda: email(" ".join(["a rather long subject"] * 12)),
    "long_non_ascii_subject": lambda: email("Очень длинная тема письма про вашу корзину " * 4),
    "transactional_no_list_unsubscribe": lambda: email(unsubscribe_url=None),
    "runs_of_spaces_and_tabs": lambda: email(text="a  b\t\tc   \n\n\n", html="<p>x   y</p>"),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_verifies_the_signature(name: str, signer: DkimSigner, key: Any) -> None:
    signed = signer.sign(MESSAGES[name](), NOW_S)
    assert dkim.verify(signed, dnsfunc=dns_for(key))


def test_signs_the_headers_that_matter_each_once(signer: DkimSigner) -> None:
    fields = tags(signer.sign(email(), NOW_S))
    signed = fields[b"h"].decode().replace(" ", "").split(":")
    expected = {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
    assert expected <= set(signed)
    assert len(signed) == len(set(signed))
    assert (fields[b"a"], fields[b"c"]) == (b"rsa-sha256", b"relaxed/relaxed")
    assert (fields[b"d"], fields[b"s"], fields[b"t"]) == (
        DOMAIN.encode(),
        SELECTOR.encode(),
        str(NOW_S).encode(),
    )
    # A header that is not there is not named (that would forbid adding it later).
    plain = tags(signer.sign(email(unsubscribe_url=None), NOW_S))[b"h"].decode()
    assert "list-unsubscribe" not in plain


def test_same_bytes_as_dkimpy_sign(signer: DkimSigner, key: rsa.RSAPrivateKey) -> None:
    """PKCS#1 v1.5 is deterministic: same headers hashed, same signature, same field."""
    for name, make in MESSAGES.items():
        data = make()
        ours = signer.signature(data, NOW_S)
        include = tags(ours)[b"h"].replace(b" ", b"").split(b":")
        theirs = dkim.sign(
            data,
            SELECTOR.encode(),
            DOMAIN.encode(),
            private_key_pem(key),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        # dkimpy stamps its own clock: sign again at its t= (it may have ticked over).
        assert signer.signature(data, int(tags(theirs)[b"t"])) == theirs, name


@pytest.mark.parametrize("where", ["body", "subject", "to"])
def test_tampering_fails_verification(where: str, signer: DkimSigner, key: Any) -> None:
    signed = signer.sign(email(), NOW_S)
    if where == "body":
        tampered = signed.replace(b"Blue Mug", b"Blue Jug")
    elif where == "subject":
        tampered = signed.replace(b"Subject: Your cart is waiting", b"Subject: Your cart is gone")
    else:
        tampered = signed.replace(b"To: ann@example.com", b"To: bob@example.com")
    assert tampered != signed
    assert dkim.verify(signed, dnsfunc=dns_for(key))
    assert not dkim.verify(tampered, dnsfunc=dns_for(key))


def test_relaxed_survives_refolding_and_whitespace(signer: DkimSigner, key: Any) -> None:
    """What relays do to a message in transit (refold, pad lines) keeps it valid."""
    signed = signer.sign(email(), NOW_S)
    refolded = signed.replace(b"Subject: Your cart", b"Subject:   Your\r\n\tcart")
    padded = signed.replace(b"Blue Mug", b"Blue \t Mug").replace(b"Ann,\r\n", b"Ann, \t \r\n", 1)
    for changed in (refolded, padded):
        assert changed != signed
        assert dkim.verify(changed, dnsfunc=dns_for(key))


def test_wrong_key_in_dns_fails(signer: DkimSigner) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not dkim.verify(signer.sign(email(), NOW_S), dnsfunc=dns_for(other))


def test_bare_lf_message_is_sent_and_signed_as_crlf(signer: DkimSigner, key: Any) -> None:
    data = email().replace(b"\r\n", b"\n")
    signed = signer.sign(data, NOW_S)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert dkim.verify(signed, dnsfunc=dns_for(key))


def test_a_line_that_is_no_header_is_a_permanent_error(signer: DkimSigner) -> None:
    with pytest.raises(DkimError):
        signer.sign(b"From: a@shop.example\r\nnot a header\r\n\r\nbody\r\n", NOW_S)


def _random_text(rng: random.Random, crlf_at_end: bool) -> bytes:
    pieces = [b"a", b"b", b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\r\n\r\n", b"=20", b"\xc3\xa9"]
    text = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))
    return text + (b"\r\n" * rng.randrange(0, 3) if crlf_at_end else b"")


def test_canonicalisation_equals_dkimpy_relaxed() -> None:
    """The shortcuts (skip the regular expressions when nothing matches) change nothing."""
    rng = random.Random(11)
    for i in range(3000):
        body = _random_text(rng, crlf_at_end=i % 2 == 0)
        assert canonical_body(body) == Relaxed.canonicalize_body(body), body
        value = _random_text(rng, crlf_at_end=True).replace(b"\r\n", b"\r\n ") + b"\r\n"
        name = rng.choice([b"Subject", b"X-Thing ", b"to"])
        expected = Relaxed.canonicalize_headers([[name, value]])
        assert canonical_headers([[name, value]]) == expected, value


# -- settings -------------------------------------------------------------------------
def write_pem(path: Path, pem: bytes) -> str:
    path.write_bytes(pem)
    return str(path)


def test_no_dkim_settings_no_signer() -> None:
    assert DkimSigner.from_settings(Settings()) is None
    assert DkimSigner.from_settings(Settings(dkim_domain=" ", dkim_key_file="")) is None


def test_settings_make_a_signer(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for pem in (private_key_pem(key), pkcs8):
        settings = Settings(
            dkim_domain="Shop.Example.",
            dkim_selector=SELECTOR,
            dkim_key_file=write_pem(tmp_path / "k.pem", pem),
            mail_from="Shop <news@shop.example>",
        )
        signer = DkimSigner.from_settings(settings)
        assert signer is not None
        assert dkim.verify(signer.sign(email(), NOW_S), dnsfunc=dns_for(key))


def test_broken_setups_are_refused_naming_the_setting(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    good = write_pem(tmp_path / "good.pem", private_key_pem(key))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    not_rsa = write_pem(
        tmp_path / "ec.pem",
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    encrypted = write_pem(
        tmp_path / "enc.pem",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    )
    public = write_pem(
        tmp_path / "pub.pem",
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    missing = str(tmp_path / "missing.pem")
    full = {"dkim_domain": DOMAIN, "dkim_selector": SELECTOR, "dkim_key_file": good}
    cases: list[tuple[dict[str, str], str]] = [
        ({"dkim_domain": DOMAIN}, "NUDGE_DKIM_SELECTOR and NUDGE_DKIM_KEY_FILE not set"),
        ({"dkim_selector": SELECTOR, "dkim_key_file": good}, "NUDGE_DKIM_DOMAIN not set"),
        ({**full, "dkim_key_file": missing}, f"NUDGE_DKIM_KEY_FILE={missing}: cannot read it"),
        ({**full, "dkim_key_file": not_rsa}, f"NUDGE_DKIM_KEY_FILE={not_rsa}: not an RSA"),
        ({**full, "dkim_key_file": encrypted}, f"NUDGE_DKIM_KEY_FILE={encrypted}: the key is enc"),
        ({**full, "dkim_key_file": public}, f"NUDGE_DKIM_KEY_FILE={public}: not a PEM private"),
        ({**full, "dkim_domain": "shop example"}, "NUDGE_DKIM_DOMAIN='shop example': not a dom"),
        ({**full, "dkim_selector": "a;b=c"}, "NUDGE_DKIM_SELECTOR='a;b=c': not a DNS name"),
    ]
    for values, expected in cases:
        with pytest.raises(ConfigError) as caught:
            DkimSigner.from_settings(Settings(**values))
        message = str(caught.value)
        assert message.startswith(expected), (values, message)
        assert "\n" not in message


def test_nudge_deliver_refuses_a_partial_setup_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(
        PYTHONPATH=str(REPO),
        NUDGE_DKIM_DOMAIN=DOMAIN,
        NUDGE_DKIM_KEY_FILE=str(tmp_path / "k.pem"),
        # Nothing listens here: had the DKIM check not come first, this would wait.
        NUDGE_KAFKA_BOOTSTRAP="127.0.0.1:9",
        NUDGE_REDIS_URL="redis://127.0.0.1:9/0",
        NUDGE_CONNECT_TIMEOUT_S="30",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nudge", "deliver"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: NUDGE_DKIM_SELECTOR not set"), lines[0]


# -- nudge dkim keygen ----------------------------------------------------------------
def test_keygen_writes_a_private_key_and_the_record_that_verifies_it(tmp_path: Path) -> None:
    out = tmp_path / "dkim.pem"
    result = CliRunner().invoke(
        main, ["dkim", "keygen", "--selector", "s2026", "--domain", "Shop.Example", "--out", out]
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048

    # The zone-file line, its strings joined as a resolver joins them, is the record.
    zone = next(line for line in result.output.splitlines() if " IN TXT " in line)
    assert zone.split()[0] == "s2026._domainkey.shop.example."
    strings = re.findall(r'"([^"]*)"', zone)
    assert all(len(s) <= 255 for s in strings) and len(strings) >= 2
    record = "".join(strings).encode()
    assert f"value: {record.decode()}" in result.output

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"s2026._domainkey.shop.example." else None

    settings = Settings(dkim_domain="shop.example", dkim_selector="s2026", dkim_key_file=str(out))
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    assert dkim.verify(signer.sign(email(), NOW_S), dnsfunc=dnsfunc)
    assert dkim.verify(signer.sign(email(), NOW_S), dnsfunc=dns_for(key, "s2026"))


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    out = tmp_path / "dkim.pem"
    out.write_bytes(b"the key in use")
    result = CliRunner().invoke(
        main, ["dkim", "keygen", "--selector", "s", "--domain", "shop.example", "--out", out]
    )
    assert result.exit_code != 0
    assert "exists" in result.output
    assert out.read_bytes() == b"the key in use"


def test_alignment_with_the_from_domain(signer: DkimSigner) -> None:
    assert signer.aligned_with("Shop <news@shop.example>")
    assert signer.aligned_with("news@mail.Shop.Example")
    assert not signer.aligned_with("Shop <news@othershop.example>")
    assert not signer.aligned_with("Shop <news@example>")


def test_generated_keys_are_2048_bit_rsa() -> None:
    assert generate_key().key_size == 2048
