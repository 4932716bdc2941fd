"""What rendering one built-in email costs, and what inlining its CSS would add per email.

Renders the built-in abandoned-cart email (three items, four recommendations, English
and Russian alternately) N times through the delivery worker's ``Renderer``, three ways
in the same run and process:

* as sent: the built-in source, its stylesheet inlined once at import;
* inlined per email: the same source given as a flow's own HTML, which the renderer
  inlines after rendering (what every built-in email would cost without the former);
* not inlined: that again with ``inline_css`` replaced by the identity (the floor).

    python benchmarks/render_cost.py [--emails 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import nudge.delivery.render as render_module
from nudge.delivery.brand import Brand
from nudge.delivery.defaults import _DEFAULTS
from nudge.delivery.links import utm_params
from nudge.delivery.render import Footer, Renderer
from nudge.delivery.totals import line_total, subtotal
from nudge.models.message import Message


def _context(locale: str) -> dict[str, Any]:
    def product(n: int, quantity: int | None) -> dict[str, Any]:
        return {
            "product_id": f"p{n}", "title": f"Product {n}", "price": 10.5 * n,
            "url": f"https://shop.example.com/p{n}", "currency": "EUR",
            "image_url": f"https://cdn.example.com/p{n}.jpg", "quantity": quantity,
        }  # fmt: skip

    items = [product(n, n) for n in (1, 2, 3)]
    for item in items:
        item["line_total"] = line_total(item)
    return {
        "customer": {"first_name": "Ann", "attributes": {}},
        "items": items,
        "subtotal": subtotal(items),
        "recommendations": [product(n, None) for n in (4, 5, 6, 7)],
        "brand": Brand("Demo Shop", "https://cdn.example.com/logo.png"),
        "locale": locale,
        "shop_url": "https://shop.example.com",
        "cart_url": "https://shop.example.com/cart",
        "utm_params": {},
    }


def _per_email_us(renderer: Renderer, emails: int, message: Message | None) -> float:
    utm = utm_params("nudge", "email", "bench", "abandoned_cart")
    footer = Footer("Demo Shop", "1 Example Street", "https://nudge.example.com/u/t.s")
    contexts = [_context("en"), _context("ru")]
    started = time.perf_counter()
    for i in range(emails):
        renderer.render(
            message, kind="abandoned_cart", step=0, context=contexts[i % 2], utm=utm, footer=footer
        )
    return (time.perf_counter() - started) / emails * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    renderer = Renderer()
    inline = render_module.inline_css
    written = _DEFAULTS[("abandoned_cart", 0)]
    own = Message(html=written.html, preheader=written.preheader)
    for message in (None, own):
        _per_email_us(renderer, 200, message)  # compile the templates, warm the caches
    sent, per_email, plain = [], [], []
    for _ in range(args.repeats):
        sent.append(_per_email_us(renderer, args.emails, None))
        per_email.append(_per_email_us(renderer, args.emails, own))
        render_module.inline_css = lambda html: html  # the floor: no inlining at all
        plain.append(_per_email_us(renderer, args.emails, own))
        render_module.inline_css = inline
    for name, runs in (("as sent", sent), ("inlined per email", per_email), ("not inlined", plain)):
        us = statistics.median(runs)
        print(f"{name:>18}: {us:7.1f} us/email ({1e6 / us:,.0f}/s on one core)")
    print(f"medians of {args.repeats} repeats of {args.emails} emails")


if __name__ == "__main__":
    main()
