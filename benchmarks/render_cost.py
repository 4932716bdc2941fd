"""What rendering one built-in email costs, and the share of it that CSS inlining takes.

Renders the built-in abandoned-cart email (three items, four recommendations, English
and Russian alternately) N times through the delivery worker's ``Renderer``, then the
same with ``inline_css`` replaced by the identity: the peer, in the same run and
process. Prints microseconds per email for both and the rate one core could render.

    python benchmarks/render_cost.py [--emails 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import nudge.delivery.render as render_module
from nudge.delivery.brand import Brand
from nudge.delivery.links import utm_params
from nudge.delivery.render import Footer, Renderer
from nudge.delivery.totals import line_total, subtotal


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


def _per_email_us(renderer: Renderer, emails: int) -> float:
    utm = utm_params("nudge", "email", "bench", "abandoned_cart")
    footer = Footer("Demo Shop", "1 Example Street", "https://nudge.example.com/u/t.s")
    contexts = [_context("en"), _context("ru")]
    started = time.perf_counter()
    for i in range(emails):
        renderer.render(
            None, kind="abandoned_cart", step=0, context=contexts[i % 2], utm=utm, footer=footer
        )
    return (time.perf_counter() - started) / emails * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    renderer = Renderer()
    inline = render_module.inline_css
    _per_email_us(renderer, 200)  # compile the templates, warm the caches
    inlined, plain = [], []
    for _ in range(args.repeats):
        render_module.inline_css = inline
        inlined.append(_per_email_us(renderer, args.emails))
        render_module.inline_css = lambda html: html  # the peer: no inlining
        plain.append(_per_email_us(renderer, args.emails))
    render_module.inline_css = inline
    with_css, without = statistics.median(inlined), statistics.median(plain)
    print(f"render, CSS inlined: {with_css:7.1f} us/email ({1e6 / with_css:,.0f}/s on one core)")
    print(f"render, not inlined: {without:7.1f} us/email ({1e6 / without:,.0f}/s on one core)")
    print(f"inlining costs {with_css - without:.1f} us per email, medians of {args.repeats}")


if __name__ == "__main__":
    main()
