"""DKIM signatures (RFC 6376) on every outgoing email: rsa-sha256, relaxed/relaxed.

dkimpy is the reference implementation, but its RSA is pure Python: several
milliseconds per 2048-bit signature, more than the rest of an email costs the delivery
worker (``benchmarks/dkim_sign.py``). So the RSA step is OpenSSL's (``cryptography``),
and what decides *what* is signed is dkimpy's: its parser (``rfc822_parse``), header selection
(``select_headers``), ``b=`` stripping (``RE_BTAG``) and folding (``fold``), the tags
in the order ``dkim.DKIM.sign`` writes them, and its relaxed canonicalisation,
reproduced with shortcuts (``canonical_body``, ``canonical_headers``). PKCS#1 v1.5
signatures are deterministic, so for the same message and time this writes byte for
byte the header ``dkim.sign`` writes: ``tests/test_delivery_dkim.py`` checks that,
that ``dkim.verify`` accepts it, and the canonicalisation against dkimpy's on random
text; ``benchmarks/dkim_sign.py`` times both.

Set up by ``NUDGE_DKIM_DOMAIN``, ``NUDGE_DKIM_SELECTOR`` and ``NUDGE_DKIM_KEY_FILE``,
all three or none (``DkimSigner.from_settings``). Without them nothing is signed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from email.utils import parseaddr
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from nudge.errors import ConfigError, PermanentError
from nudge.settings import Settings

#: Header fields signed when present, each once (in the order they stand in the
#: message): RFC 6376's recommendation as dkimpy lists it, plus the one-click
#: unsubscribe companion (RFC 8058 requires it signed) and Gmail's Feedback-ID.
SIGNED_HEADERS = frozenset(
    (*(name.decode() for name in dkim.DKIM.SHOULD), "list-unsubscribe-post", "feedback-id")
)
#: Receivers ignore signatures with shorter keys (RFC 8301).
MIN_KEY_BITS = 1024
KEYGEN_BITS = 2048

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# Selectors are DNS labels too; underscores are common in practice and resolve fine.
_SELECTOR_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_SELECTOR = re.compile(rf"^{_SELECTOR_LABEL}(?:\.{_SELECTOR_LABEL})*$")
_PADDING = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())
_HEADER_NAME = b"DKIM-Signature"


class DkimError(PermanentError):
    """A message the signer cannot parse (a header line that is no header)."""

    reason = "dkim_unsignable"


class DkimSigner:
    """Signs finished message bytes for one domain and selector with one RSA key."""

    def __init__(self, domain: str, selector: str, key: rsa.RSAPrivateKey) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer the three ``NUDGE_DKIM_*`` settings describe; None when none is set.

        A partial or unusable setup raises ``ConfigError`` with one line naming the
        setting to fix.
        """
        given = {
            "NUDGE_DKIM_DOMAIN": (settings.dkim_domain or "").strip(),
            "NUDGE_DKIM_SELECTOR": (settings.dkim_selector or "").strip(),
            "NUDGE_DKIM_KEY_FILE": (settings.dkim_key_file or "").strip(),
        }
        missing = [name for name, value in given.items() if not value]
        if len(missing) == len(given):
            return None
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: DKIM signing needs NUDGE_DKIM_DOMAIN, "
                "NUDGE_DKIM_SELECTOR and NUDGE_DKIM_KEY_FILE together (or none of them)"
            )
        names = {}
        for setting, check in (
            ("NUDGE_DKIM_DOMAIN", domain_name),
            ("NUDGE_DKIM_SELECTOR", selector_name),
        ):
            try:
                names[setting] = check(given[setting])
            except ValueError as exc:
                raise ConfigError(f"{setting}={given[setting]!r}: {exc}") from None
        domain, selector = names["NUDGE_DKIM_DOMAIN"], names["NUDGE_DKIM_SELECTOR"]
        return cls(domain, selector, load_key(Path(given["NUDGE_DKIM_KEY_FILE"])))

    def aligned_with(self, mail_from: str) -> bool:
        """DMARC counts a DKIM pass only if d= is the From domain or a parent of it
        (relaxed alignment; organisational domains are approximated by the suffix)."""
        sender = parseaddr(mail_from)[1].rpartition("@")[2].lower().encode()
        return sender == self.domain or sender.endswith(b"." + self.domain)

    def sign(self, data: bytes, now_s: int) -> bytes:
        """``data`` with a DKIM-Signature header field in front (``t=now_s``)."""
        data = _crlf(data)
        return self._signature(data, now_s) + data

    def signature(self, data: bytes, now_s: int) -> bytes:
        """The ``DKIM-Signature: ...\\r\\n`` field for ``data`` sent with CRLF line ends."""
        return self._signature(_crlf(data), now_s)

    def _signature(self, data: bytes, now_s: int) -> bytes:
        head, blank, body = data.partition(b"\r\n\r\n")
        try:
            # Only the head goes through the line parser: the body needs no splitting.
            headers = dkim.rfc822_parse(head + b"\r\n\r\n" if blank else data)[0]
        except dkim.MessageFormatError as exc:
            raise DkimError(f"dkim_unsignable: {exc}") from None
        if not blank:
            body = b""
        include = _included(headers)
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/relaxed"),
            (b"d", self.domain),
            (b"i", b"@" + self.domain),
            (b"q", b"dns/txt"),
            (b"s", self.selector),
            (b"t", str(int(now_s)).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            # As dkimpy: a placeholder as long as a folded b= pushes b= onto its own
            # line, so that folding again with the real value leaves the rest alone.
            (b"b", b"0" * 60),
        ]
        value = dkim.fold(_joined(fields), namelen=len(_HEADER_NAME), linesep=b"\r\n")
        unsigned = [_HEADER_NAME, b" " + dkim.RE_BTAG.sub(b"\\1", value)]
        digest = hashlib.sha256()
        for name, canonical in dkim.select_headers(canonical_headers(headers), include):
            digest.update(name + b":" + canonical)
        # The signature field itself is hashed last, with an empty b= and no final CRLF.
        name, canonical = canonical_headers([unsigned])[0]
        digest.update(name + b":" + canonical.rstrip())
        signed = self.key.sign(digest.digest(), _PADDING, _PREHASHED)
        fields[-1] = (b"b", base64.b64encode(signed))
        value = dkim.fold(_joined(fields) + b"\r\n", namelen=len(_HEADER_NAME), linesep=b"\r\n")
        return _HEADER_NAME + b": " + value


# -- relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) --------------------------------
# dkimpy's ``Relaxed`` runs its regular expressions over every header and the whole
# body, which cost about as much as the RSA signature itself; most emails have little
# or nothing for them to change (quoted-printable leaves no trailing spaces), so they
# run only where a cheap substring search finds something. The results are dkimpy's,
# byte for byte, for CRLF input (tests compare them on random text).
_WSP_RUN = re.compile(rb"[\t ]{2,}|\t")
# Without tabs, the same as runs of spaces; a literal start lets the engine jump
# between candidates instead of trying a character class at every byte.
_SPACE_RUN = re.compile(rb"  +")
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")


def _compress(value: bytes) -> bytes:
    """Every run of spaces and tabs as one space (a lone space is left as it is)."""
    if b"\t" in value:
        return _WSP_RUN.sub(b" ", value)
    if b"  " in value:
        return _SPACE_RUN.sub(b" ", value)
    return value


def canonical_body(body: bytes) -> bytes:
    """``Relaxed.canonicalize_body`` of a CRLF body."""
    if b"\t" in body or b" \r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    return _strip_lines(_compress(body))


def _strip_lines(body: bytes) -> bytes:
    """No empty lines at the end, exactly one CRLF; an empty body stays empty."""
    return dkim.canonicalization.correct_empty_body(
        dkim.canonicalization.strip_trailing_lines(body)
    )


def canonical_headers(headers: list[list[bytes]]) -> list[tuple[bytes, bytes]]:
    """``Relaxed.canonicalize_headers`` of fields parsed from CRLF bytes (no bare LF:
    ``sign`` sees to it), so unfolding is removing each CRLF."""
    return [
        (name.lower().rstrip(), _compress(value.replace(b"\r\n", b"")).strip() + b"\r\n")
        for name, value in headers
    ]


def domain_name(raw: str) -> str:
    """The d= value, in lower case; ``ValueError`` saying why if it is not a domain."""
    domain = raw.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise ValueError(
            "not a domain name (ASCII letters, digits, hyphens and dots; an IDN in its xn-- form)"
        )
    return domain


def selector_name(raw: str) -> str:
    """The s= value, in lower case; ``ValueError`` saying why if it is not a DNS name."""
    selector = raw.strip().lower()
    if not _SELECTOR.match(selector):
        raise ValueError("not a DNS name (ASCII letters, digits, hyphens, underscores, dots)")
    return selector


def _crlf(data: bytes) -> bytes:
    """What goes on the wire is CRLF: sign that, as dkimpy does (its parser splits
    lines at LF or CRLF)."""
    if data.count(b"\n") != data.count(b"\r\n"):
        return re.sub(rb"\r?\n", b"\r\n", data)
    return data


def _joined(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"; ".join(b"=".join(field) for field in fields)


def _included(headers: list[list[bytes]]) -> list[bytes]:
    """The names (lower case) of the signed fields present, each once, in message order."""
    seen: dict[bytes, None] = {}
    for name, _ in headers:
        lower = name.lower()
        if lower.decode("ascii", "replace") in SIGNED_HEADERS:
            seen.setdefault(lower, None)
    return list(seen)


def load_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key in a PEM file (PKCS#1 or PKCS#8, unencrypted)."""
    setting = f"NUDGE_DKIM_KEY_FILE={path}"
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read it: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(f"{setting}: the key is encrypted; give an unencrypted one") from None
    except Exception as exc:  # ValueError, UnsupportedAlgorithm: not a usable key
        raise ConfigError(f"{setting}: not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{setting}: not an RSA private key (rsa-sha256 needs one)")
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(
            f"{setting}: a {key.key_size}-bit key; receivers ignore DKIM keys under "
            f"{MIN_KEY_BITS} bits (use {KEYGEN_BITS}: `nudge dkim keygen`)"
        )
    return key


# -- keys and their DNS record -------------------------------------------------------
def generate_key(bits: int = KEYGEN_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 ("BEGIN RSA PRIVATE KEY"): what dkimpy and OpenDKIM read too."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_txt(key: rsa.RSAPrivateKey) -> str:
    """The DKIM key record's value: ``v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>``."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


class DnsRecord:
    """The TXT record receivers look up: ``<selector>._domainkey.<domain>``."""

    # One character-string in a TXT record holds at most 255 bytes.
    _CHUNK = 255

    def __init__(self, selector: str, domain: str, value: str) -> None:
        self.name = f"{selector}._domainkey.{domain}"
        self.value = value

    def zone_line(self) -> str:
        """The record in zone-file syntax, the value split into 255-byte strings."""
        chunks = [self.value[i : i + self._CHUNK] for i in range(0, len(self.value), self._CHUNK)]
        quoted = " ".join(f'"{chunk}"' for chunk in chunks)
        return f"{self.name}. IN TXT ( {quoted} )"
