"""Per-message DKIM signing time: dkimpy's ``dkim.sign`` next to nudge's ``DkimSigner``.

Messages are what the delivery worker sends: built-in abandoned-cart emails rendered by
``Renderer`` for varied shoppers (some with non-ASCII names) and 1-3 demo-catalogue
items, written by ``build_message`` with a List-Unsubscribe. Both sign every message
(rsa-sha256, relaxed/relaxed, the same 2048-bit key and header list), one loop each,
every call timed alone; the figures are medians over all messages and repeats. The
ceiling is OpenSSL's bare RSA signature of a SHA-256 digest with the same key, over the
same messages: what no implementation that signs can go under. Every signature of ours
is checked with ``dkim.verify``.

    python benchmarks/dkim_sign.py [--messages 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import statistics
import time
from typing import Any

import dkim
from _harness import machine, markdown_table, say
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

from nudge.delivery.dkim import SIGNED_HEADERS, DkimSigner, generate_key, private_key_pem
from nudge.delivery.links import utm_params
from nudge.delivery.message import build_message
from nudge.delivery.render import Footer, Renderer
from nudge.demo import demo_catalog

DOMAIN, SELECTOR = "shop.example", "bench"
NAMES = ["Ann", "Zoë", "Jürgen", "Łukasz", "Мария", "María José", "Li", "Siobhán"]


def messages(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    catalog = demo_catalog(40)
    renderer = Renderer()
    utm = utm_params("nudge", "email", "cart-1h", "abandoned_cart")
    now_ms = int(time.time() * 1000)
    result: list[bytes] = []
    for i in range(n):
        unsubscribe = f"https://nudge.shop.example/unsubscribe/{rng.randbytes(90).hex()}.sig"
        items = [
            {**p, "quantity": 1 + rng.randrange(2)}
            for p in rng.sample(catalog, 1 + rng.randrange(3))
        ]
        name = rng.choice(NAMES)
        context: dict[str, Any] = {
            "customer": {"first_name": name, "email": f"c{i}@example.com", "attributes": {}},
            "items": items,
            "recommendations": rng.sample(catalog, 4),
            "unsubscribe_url": unsubscribe,
            "shop_url": "https://shop.example",
            "cart_url": "https://shop.example/cart",
            "utm_params": utm,
            "promo": {},
        }
        rendered = renderer.render(
            None,
            kind="abandoned_cart",
            step=0,
            context=context,
            utm=utm,
            footer=Footer("Demo Shop", "1 Example Street, Springfield", unsubscribe),
        )
        out = build_message(
            rendered,
            command_id=f"cart-1h:c{i}:{now_ms}:0",
            mail_from="Demo Shop <news@shop.example>",
            recipient=f"c{i}@example.com",
            recipient_name=f"{name} Example",
            unsubscribe_url=unsubscribe,
            now_ms=now_ms,
            ref="q3v5bqkx2l7m4d2hy6a5p3t4ze",
            bounce_domain="bounces.shop.example",
        )
        result.append(out.data)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    key = generate_key()
    pem = private_key_pem(key)
    signer = DkimSigner(DOMAIN, SELECTOR, key)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record

    pkcs1, prehashed = padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    dkimpy_s: list[float] = []
    ours_s: list[float] = []
    rsa_s: list[float] = []
    sizes: list[int] = []
    rows: list[list[object]] = []
    for repeat in range(1, args.repeats + 1):
        batch = messages(args.messages, seed=repeat)
        # The header fields ours signs (SIGNED_HEADERS present, each once), for dkimpy.
        includes = [
            list(
                dict.fromkeys(
                    name.lower()
                    for name, _ in dkim.rfc822_parse(data)[0]
                    if name.lower().decode() in SIGNED_HEADERS
                )
            )
            for data in batch
        ]
        sizes.extend(len(data) for data in batch)
        # One loop per implementation: interleaved, whichever runs right after dkimpy's
        # pure-Python churn pays for cold caches (measured: +0.2 ms for ours).
        theirs: list[float] = []
        for data, include in zip(batch, includes, strict=True):
            started = time.perf_counter()
            dkim.sign(
                data,
                SELECTOR.encode(),
                DOMAIN.encode(),
                pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=include,
            )
            theirs.append(time.perf_counter() - started)
        mine: list[float] = []
        signed: list[bytes] = []
        now = int(time.time())
        for data in batch:
            started = time.perf_counter()
            out = signer.sign(data, now)
            mine.append(time.perf_counter() - started)
            signed.append(out)
        bare: list[float] = []
        for data in batch:
            digest = hashlib.sha256(data).digest()
            started = time.perf_counter()
            key.sign(digest, pkcs1, prehashed)
            bare.append(time.perf_counter() - started)
        if not all(dkim.verify(out, dnsfunc=dnsfunc) for out in signed):
            raise SystemExit("dkim.verify rejected a signature of ours")
        dkimpy_s += theirs
        ours_s += mine
        rsa_s += bare
        t_med, m_med, b_med = (statistics.median(x) * 1000 for x in (theirs, mine, bare))
        rows.append(
            [repeat, f"{t_med:.3f}", f"{m_med:.3f}", f"{b_med:.3f}", f"{t_med / m_med:.1f}x"]
        )
        say(
            f"repeat {repeat}: dkim.sign {t_med:.3f} ms, DkimSigner {m_med:.3f} ms, "
            f"bare RSA {b_med:.3f} ms per message; {len(batch)} verified"
        )

    t_med, m_med, b_med = (statistics.median(x) * 1000 for x in (dkimpy_s, ours_s, rsa_s))
    say()
    say(
        f"{len(ours_s):,} abandoned-cart emails (median {statistics.median(sizes) / 1024:.1f} "
        f"KiB), 2048-bit RSA, rsa-sha256 relaxed/relaxed; {args.repeats} repeats; {machine()}"
    )
    say(
        markdown_table(["repeat", "dkim.sign ms", "DkimSigner ms", "bare RSA ms", "speed-up"], rows)
    )
    say()
    say(
        markdown_table(
            ["measure", "median ms per message", "messages/s on one core", "vs dkim.sign"],
            [
                [
                    "dkim.sign (dkimpy, pure-Python RSA)",
                    f"{t_med:.3f}",
                    f"{1000 / t_med:,.0f}",
                    "1x",
                ],
                [
                    "DkimSigner (dkimpy canonicalisation, OpenSSL RSA)",
                    f"{m_med:.3f}",
                    f"{1000 / m_med:,.0f}",
                    f"{t_med / m_med:.1f}x faster",
                ],
                [
                    "bare OpenSSL RSA signature (ceiling)",
                    f"{b_med:.3f}",
                    f"{1000 / b_med:,.0f}",
                    f"ours is {m_med / b_med:.2f}x of it",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
