"""What open and click tracking costs the delivery worker's rendering, per email.

The built-in abandoned-cart email (3 cart items, 4 recommendations, UTM tagging and
the footer, then ``build_message``) rendered as the Deliverer does, each email with its
own ref, alternately without tracking (the peer) and with the pixel and click-tracked
links, in the same process and run. CPU time per email, median over rounds.

    python benchmarks/render_tracking.py [--emails 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _harness import machine, markdown_table, median, say

from nudge.delivery.links import utm_params
from nudge.delivery.message import build_message
from nudge.delivery.render import Footer, Renderer
from nudge.delivery.sent_messages import message_ref
from nudge.delivery.tracking import TrackingLinks
from nudge.templating import as_record

SECRET = "bench-secret"
PUBLIC = "https://nudge.example.com"
UTM = utm_params("nudge", "email", "bench-cart", "abandoned_cart")


def product(n: int) -> dict[str, Any]:
    return {
        "product_id": f"p{n}",
        "title": f"Product {n} & more",
        "url": f"https://shop.example.com/p/{n}?color=blue&size=m",
        "image_url": f"https://cdn.example.com/p{n}.jpg",
        "price": 10.0 + n,
        "currency": "EUR",
        "quantity": 1,
    }


def context(i: int) -> dict[str, Any]:
    recs = [product(10 + n) for n in range(4)]
    return {
        "customer": {"first_name": f"Shopper {i}", "email": f"c{i}@example.com", "attributes": {}},
        "items": [product(n) for n in range(3)],
        "recommendations": recs,
        "recipient": {"recommendations": {"popular": {"recommendations": recs}}},
        "unsubscribe_url": f"{PUBLIC}/unsubscribe/tok{i}.sig",
        "shop_url": "https://shop.example.com",
        "cart_url": "https://shop.example.com/cart",
        "search_url": "https://shop.example.com/search",
        "utm_params": UTM,
        "promo": {},
        "order": as_record({}),
        "event": as_record({}),
    }


def render_all(renderer: Renderer, n: int, *, tracked: bool, contexts: list[Any]) -> float:
    """CPU seconds per email for ``n`` emails."""
    started = time.process_time()
    for i in range(n):
        unsubscribe = f"{PUBLIC}/unsubscribe/tok{i}.sig"
        tracking = (
            TrackingLinks.for_message(
                tracking_url=PUBLIC,
                public_url=PUBLIC,
                ref=message_ref(f"bench-cart:c{i}:0:0", SECRET),
                secret=SECRET,
            )
            if tracked
            else None
        )
        rendered = renderer.render(
            None,
            kind="abandoned_cart",
            step=0,
            context=contexts[i],
            utm=UTM,
            footer=Footer("Demo Shop", "1 Example Street", unsubscribe),
            tracking=tracking,
        )
        build_message(
            rendered,
            command_id=f"bench-cart:c{i}:0:0",
            mail_from="Demo Shop <shop@example.com>",
            recipient=f"c{i}@example.com",
            unsubscribe_url=unsubscribe,
            now_ms=1_700_000_000_000,
            ref="q3v5bqkx2l7m4d2hy6a5p3t4ze",
            bounce_domain="bounces.shop.example",
        )
    return (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    renderer = Renderer()
    contexts = [context(i) for i in range(args.emails)]
    render_all(renderer, 200, tracked=True, contexts=contexts)  # warm the caches
    plain: list[float] = []
    tracked: list[float] = []
    for round_ in range(args.rounds):
        # Alternate which goes first, so neither always runs on a warmer machine.
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for is_tracked in order:
            per = render_all(renderer, args.emails, tracked=is_tracked, contexts=contexts)
            (tracked if is_tracked else plain).append(per)
        say(f"round {round_ + 1}: plain {plain[-1] * 1e6:.0f}, tracked {tracked[-1] * 1e6:.0f} us")
    p, t = median(plain), median(tracked)
    say(f"\n{args.emails} abandoned-cart emails a round, {args.rounds} rounds; {machine()}")
    rows = [
        ("render + build, no tracking (peer)", f"{p * 1e6:.0f}", f"{1 / p:,.0f}", "100%"),
        ("render + build, pixel + click links", f"{t * 1e6:.0f}", f"{1 / t:,.0f}", f"{t / p:.1%}"),
    ]
    say(markdown_table(("measure", "median CPU us/email", "emails/s per core", "vs peer"), rows))


if __name__ == "__main__":
    main()
