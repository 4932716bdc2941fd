"""Every built-in template rendered for a sample shopper, the way delivery renders it.

The context comes from the real ``build_context`` and the HTML from the real
``Renderer`` (UTM tags, preheader, footer and all), so a screenshot of a sample is a
screenshot of what is sent; only the sources differ: the demo catalogue instead of
Redis, and a recommender that picks from it instead of best sellers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from pydantic import SecretStr

from nudge.delivery.context import build_context, merge_customer
from nudge.delivery.defaults import default_message
from nudge.delivery.links import utm_params
from nudge.delivery.render import Footer, Renderer
from nudge.demo import demo_catalog, demo_customers
from nudge.demo.storefront import CURRENCY, SHOP_URL
from nudge.models.commands import SendCommand
from nudge.models.message import BUILT_IN_TEMPLATES, MessageContext
from nudge.settings import Settings
from nudge.signing import confirm_payload, sign, unsubscribe_payload

#: Kinds about one product rather than a cart of them.
_ONE_PRODUCT = frozenset({"abandoned_view", "price_drop", "back_in_stock"})
#: Kinds about products at all (the others show recommendations only).
_WITH_ITEMS = _ONE_PRODUCT | {
    "abandoned_cart",
    "thank_you",
    "order_status",
    "seller_order_status",
    "flow",
}
#: Transactional kinds: no unsubscribe link in their footer.
_TRANSACTIONAL = frozenset(
    {"order_status", "double_opt_in", "seller_order_status", "seller_milestone"}
)
#: When the sample promo code expires: 31 December 2026, in epoch milliseconds.
_PROMO_EXPIRES_MS = 1_798_675_200_000


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str
    step: int
    subject: str
    html: str

    @property
    def name(self) -> str:
        """A file name's stem: ``abandoned_cart-1``."""
        return f"{self.kind}-{self.step}"


def built_in_steps() -> Iterator[tuple[str, int]]:
    """Every (kind, step) with a built-in message of its own: a later step without one
    falls back to the first, which is where its enumeration stops."""
    for kind in BUILT_IN_TEMPLATES:
        first = default_message(kind, 0)
        yield kind, 0
        step = 1
        while default_message(kind, step) is not first:
            yield kind, step
            step += 1


class _Catalogue:
    """The product source ``build_context`` reads: a fixed catalogue, no Redis."""

    def __init__(self, catalog: Sequence[Mapping[str, Any]]) -> None:
        self.products = {str(p["product_id"]): dict(p) for p in catalog}

    async def get_products(self, product_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {pid: self.products[pid] for pid in product_ids if pid in self.products}


class _SampleRecommender:
    """Available products not in the message, those of the category (or matching the
    search) first: plausible picks without a model or sales history."""

    def __init__(self, catalog: Sequence[Mapping[str, Any]]) -> None:
        self.catalog = [dict(p) for p in catalog if p.get("available", True)]

    async def recommend(
        self,
        customer_id: str,
        algorithm: str,
        count: int,
        exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        words = set((query or "").lower().split()) if algorithm == "search" else set()
        candidates = [p for p in self.catalog if p["product_id"] not in set(exclude)]

        def fits(product: Mapping[str, Any]) -> bool:
            if category and category in (product.get("category_ids") or ()):
                return True
            return bool(words & set(str(product["title"]).lower().replace(",", "").split()))

        ranked = sorted(candidates, key=lambda p: not fits(p))  # stable: catalogue order
        return ranked[:count]


def _context(kind: str, catalog: Sequence[Mapping[str, Any]]) -> MessageContext:
    """What the stream worker would know when it sends ``kind``: a cart of two, a
    viewed product, a knitwear category, a search, an order, a seller."""
    shown = [p for p in catalog if p.get("available", True)]
    chosen = shown[3:4] if kind in _ONE_PRODUCT else [shown[0], shown[5]]
    items = [
        {"product_id": p["product_id"], "quantity": 2 if n else 1, "price": p["price"]}
        for n, p in enumerate(chosen)
    ]
    total = round(sum(i["price"] * i["quantity"] for i in items), 2)
    order = {
        "order_id": "o-2041",
        "status": "shipped",
        "items": items,
        "total": total,
        "currency": CURRENCY,
    }
    event: dict[str, Any] = {"reasons": ["subscribed"]}
    if kind == "price_drop":  # the stream side copies the event's old price to the item
        event["old_price"] = items[0]["old_price"] = round(chosen[0]["price"] * 1.25, 2)
    return MessageContext(
        items=tuple(items) if kind in _WITH_ITEMS else (),
        history=tuple(i["product_id"] for i in items),
        category={"category_id": "c-knitwear"},
        search_query="cardigan",  # four of the demo catalogue's knitwear are
        event=event,
        order=order,
        seller={
            "seller_id": "s-17",
            "name": "Harbour Knits",
            "email": "hello@example.com",
            "sales": 10,
        },
        milestone=10,
    )


async def _render_one(
    kind: str,
    step: int,
    *,
    settings: Settings,
    catalog: Sequence[Mapping[str, Any]],
    customer: Mapping[str, Any],
    renderer: Renderer,
    now_ms: int,
) -> Sample:
    command = SendCommand(
        id=f"preview-{kind}-{step}",
        trigger_id=f"preview-{kind}",
        kind=kind,
        step=step,
        channel="email",
        customer_id=str(customer["customer_id"]),
        recipient=str(customer["email"]),
        context=_context(kind, catalog),
        due_ms=now_ms,
        created_ms=now_ms,
        marketing=kind not in _TRANSACTIONAL,
    )
    secret: SecretStr = settings.secret_key
    base = settings.public_url.rstrip("/")
    unsubscribe = ""
    if command.marketing:
        token = sign(unsubscribe_payload(command.customer_id, "email"), secret, now_ms, 86400)
        unsubscribe = f"{base}/unsubscribe/{token}"
    confirm = sign(confirm_payload(command.customer_id, command.recipient), secret, now_ms, 86400)
    utm = utm_params(settings.utm_source, settings.utm_medium, command.trigger_id, kind)
    sender_name = parseaddr(settings.mail_from)[0] or settings.mail_from
    context = await build_context(
        command,
        customer=merge_customer(command, customer),
        shared=_Catalogue(catalog),
        recommender=_SampleRecommender(catalog),
        utm=utm,
        unsubscribe_url=unsubscribe,
        shop_url=SHOP_URL,
        sender={
            "name": sender_name,
            "email": parseaddr(settings.mail_from)[1],
            "postal_address": settings.postal_address,
        },
        promo={"code": "DEMO-7QX2K4", "expires_at": _PROMO_EXPIRES_MS},
        confirm_url=f"{base}/confirm/{confirm}",
    )
    rendered = renderer.render(
        None,
        kind=kind,
        step=step,
        context=context,
        utm=utm,
        footer=Footer(sender_name, settings.postal_address, unsubscribe or None),
    )
    return Sample(kind=kind, step=step, subject=rendered.subject, html=rendered.html)


def render_samples(settings: Settings, image_base: str | None, now_ms: int) -> list[Sample]:
    """Every built-in template, rendered for the demo's first customer; product pictures
    at ``image_base`` (an ``ImageServer``'s ``base_url``)."""
    catalog = demo_catalog(image_base=image_base)
    customer = demo_customers(1)[0]
    renderer = Renderer()

    async def render_all() -> list[Sample]:
        return [
            await _render_one(
                kind,
                step,
                settings=settings,
                catalog=catalog,
                customer=customer,
                renderer=renderer,
                now_ms=now_ms,
            )
            for kind, step in built_in_steps()
        ]

    return asyncio.run(render_all())
