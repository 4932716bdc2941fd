"""The template context: what the stream worker knew, enriched at send time.

Everything a template may use is built here, so the documented names are in one place:

``customer``         profile fields (email, first_name, last_name, phone, timezone,
                     attributes, ...): the Redis profile over what the command carried
``items``            abandoned products: product_id, title, url, image_url, price,
                     currency, quantity (catalogue first, the command's copy as fallback)
``items[].line_total``  price times quantity, ``None`` without a price
``subtotal``         ``{amount, currency}``: the items' line totals added up; ``None``
                     when a price is missing or the items' currencies differ
``category``         ``{category_id, name?, url?}`` (abandoned_category; the name from
                     the catalogue's ``category_path`` of a product in it, the url from
                     ``NUDGE_CATEGORY_URL``)
``search_query``     the search (abandoned_search)
``recommendations``  products to suggest; also as ``recipient.recommendations.<algorithm>``
``confirm_url``      the signed double opt-in link for the recipient's address
``event``, ``order``  the flow's triggering event (an order in order flows), as sent
``promo``            ``{code, expires_at}`` when the send step asks for a promo code
``seller``           in messages to a marketplace seller: seller_id, name, email, phone,
                     attributes, sales; ``milestone``, the sales a ``seller_sales`` flow
                     congratulates on
``brand``            the shop's name, logo and colours (``delivery.brand.Brand``)
``locale``           the language the message is written in (``ru``, ``en_GB``): the
                     customer's ``locale`` (profile field or attribute), else
                     ``NUDGE_DEFAULT_LOCALE``; ``money``, ``date`` and ``{% trans %}``
                     follow it
``unsubscribe_url``, ``shop_url`` (bare), ``cart_url``, ``search_url``, ``sender``,
``trigger``; the ``|utm`` filter adds this email's UTM parameters to a URL
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from nudge.delivery.brand import Brand
from nudge.delivery.i18n import FALLBACK, resolve_locale
from nudge.delivery.links import add_params
from nudge.delivery.totals import line_total, subtotal
from nudge.models.commands import SendCommand
from nudge.models.message import CURRENT_CATEGORY, Recommendations
from nudge.recommender import PopularRecommender, Recommender
from nudge.templating import as_record

__all__ = ["PopularRecommender", "Recommender", "build_context", "merge_customer"]

DEFAULT_RECOMMENDATIONS = 4
DEFAULT_CATEGORY_URL = "{shop_url}/category/{id}"


class ProductSource(Protocol):
    """Catalogue records by id: ``SharedState`` (Redis) when sending, a fixed catalogue
    for ``nudge preview``."""

    async def get_products(self, product_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...


_PRODUCT_FIELDS = (
    "product_id", "title", "url", "image_url", "price", "currency",
    "old_price", "description", "category_path", "params",
)  # fmt: skip


def default_recommendations(kind: str) -> Recommendations:
    """What a message shows when its step asks for nothing: products matching an
    abandoned search, best sellers of an abandoned category, else best sellers."""
    if kind == "abandoned_search":
        return Recommendations("search", DEFAULT_RECOMMENDATIONS)
    if kind == "abandoned_category":
        return Recommendations("popular", DEFAULT_RECOMMENDATIONS, CURRENT_CATEGORY)
    return Recommendations(count=DEFAULT_RECOMMENDATIONS)


def merge_customer(command: SendCommand, profile: Mapping[str, Any] | None) -> dict[str, Any]:
    """The freshest view of the customer: Redis profile fields win over the command's."""
    customer: dict[str, Any] = dict(command.context.customer)
    attributes = dict(customer.get("attributes") or {})
    for name, value in (profile or {}).items():
        if value is not None:
            customer[name] = value
    if profile and isinstance(profile.get("attributes"), Mapping):
        attributes.update(profile["attributes"])
    customer["attributes"] = attributes
    customer.setdefault("customer_id", command.customer_id)
    customer.setdefault("email", command.recipient)
    for name in ("first_name", "last_name", "phone", "timezone"):
        customer.setdefault(name, None)
    return customer


def _product(
    catalogue: Mapping[str, Any] | None,
    carried: Mapping[str, Any],
    utm: Mapping[str, str],
    skip: tuple[str, ...],
) -> dict[str, Any]:
    product: dict[str, Any] = {name: carried.get(name) for name in _PRODUCT_FIELDS}
    for name in _PRODUCT_FIELDS:
        if catalogue and catalogue.get(name) is not None:
            product[name] = catalogue[name]
    product["title"] = product["title"] or product["product_id"] or ""
    product["currency"] = product["currency"] or ""
    product["url"] = add_params(product["url"] or "", utm, skip_prefixes=skip)
    return product


def customer_locale(customer: Mapping[str, Any], default: str = FALLBACK) -> str:
    """The customer's language: a profile ``locale``, else a ``locale`` or ``language``
    attribute, else ``default``; one Babel does not know counts as none."""
    attributes = customer.get("attributes") or {}
    for value in (customer.get("locale"), attributes.get("locale"), attributes.get("language")):
        if value:
            return resolve_locale(value, default)
    return resolve_locale(default)


def category_url(pattern: str, shop_url: str, category_id: str) -> str:
    """A category's page: ``pattern`` (``NUDGE_CATEGORY_URL``) with the shop's base and
    the id, quoted whole (Google feeds' ids are paths such as ``Home > Kitchen``)."""
    return pattern.format(shop_url=shop_url.rstrip("/"), id=quote(category_id, safe=""))


def _ids(carried: Any) -> list[str]:
    """Product ids the stream worker carried (``history``, ``bought``); [] if absent."""
    return [str(p) for p in carried] if isinstance(carried, list) else []


def _current_category(
    category: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    catalogue: Mapping[str, Mapping[str, Any]],
) -> str | None:
    """The category a message is about: its own, else its first product's (leaf)."""
    if category.get("category_id"):
        return str(category["category_id"])
    for item in items:
        path = (catalogue.get(str(item["product_id"])) or {}).get("category_ids") or []
        if path:
            return str(path[-1])
    return None


async def build_context(
    command: SendCommand,
    *,
    customer: dict[str, Any],
    shared: ProductSource,
    recommender: Recommender,
    utm: Mapping[str, str],
    unsubscribe_url: str,
    shop_url: str,
    sender: Mapping[str, str],
    promo: Mapping[str, Any] | None = None,
    confirm_url: str = "",
    brand: Brand | None = None,
    default_locale: str = FALLBACK,
    category_pattern: str = DEFAULT_CATEGORY_URL,
) -> dict[str, Any]:
    # Links back to us (unsubscribe, later click tracking) are signed: never touch them.
    skip = (unsubscribe_url,) if unsubscribe_url else ()
    raw_items = command.context.items
    carried_items = [i for i in raw_items if isinstance(i, Mapping) and i.get("product_id")]
    catalogue = await shared.get_products(str(i["product_id"]) for i in carried_items)
    items = []
    for carried in carried_items:
        item = _product(catalogue.get(str(carried["product_id"])), carried, utm, skip)
        quantity = carried.get("quantity")
        item["quantity"] = quantity if isinstance(quantity, int) and quantity > 0 else 1
        item["line_total"] = line_total(item)
        items.append(item)

    category = {"category_id": None, "name": None, "url": None, **(command.context.category or {})}

    wanted = command.recommendations or default_recommendations(command.kind)
    in_category = wanted.category
    if in_category == CURRENT_CATEGORY:
        in_category = _current_category(category, carried_items, catalogue)
    exclude = [item["product_id"] for item in items] + _ids(command.context.bought)
    history = _ids(command.context.history)
    algorithm = wanted.algorithm
    recs = await recommender.recommend(
        command.customer_id,
        algorithm,
        wanted.count,
        exclude,
        history,
        in_category,
        command.context.search_query,
    )
    recommendations = [_product(rec, {}, utm, skip) for rec in recs]
    if category["category_id"] and not category["name"]:
        category["name"] = _category_name(
            str(category["category_id"]), [*catalogue.values(), *recs]
        )

    base = shop_url.rstrip("/")
    if category["category_id"] and not category.get("url"):
        url = category_url(category_pattern, base, str(category["category_id"]))
        category["url"] = add_params(url, utm)
    query = command.context.search_query or ""
    return {
        "customer": customer,
        "brand": brand or Brand(name=sender.get("name", "")),
        "locale": customer_locale(customer, default_locale),
        "recipient": {
            "email": command.recipient,
            "customer_id": command.customer_id,
            "recommendations": {algorithm: {"recommendations": recommendations}},
        },
        "items": items,
        "subtotal": subtotal(items),
        "category": category,
        "search_query": query,
        "recommendations": recommendations,
        "unsubscribe_url": unsubscribe_url,
        "confirm_url": confirm_url,
        # shop_url stays bare so templates can build on it; ``|utm`` tags what they build.
        "shop_url": base,
        "cart_url": add_params(f"{base}/cart", utm),
        "search_url": add_params(f"{base}/search?{urlencode({'q': query})}", utm),
        "utm_params": dict(utm),
        "sender": dict(sender),
        "trigger": {"id": command.trigger_id, "kind": command.kind, "step": command.step},
        # What the flow's event said (an order, a viewed product), as the stream saw it.
        "promo": dict(promo) if promo is not None else {},
        "event": _mapping(command.context.event),
        "order": _mapping(command.context.order),
        "seller": _mapping(command.context.seller),
        "milestone": command.context.milestone,
    }


def _category_name(category_id: str, products: Sequence[Mapping[str, Any]]) -> str | None:
    """The category's name, from any product in it: a feed gives each product its
    ``category_ids`` and, in the same order, their names as ``category_path``."""
    for product in products:
        ids = [str(c) for c in product.get("category_ids") or ()]
        names = product.get("category_path") or ()
        if category_id in ids and len(names) == len(ids):
            return str(names[ids.index(category_id)])
    return None


def _mapping(value: Any) -> SimpleNamespace:
    return as_record(value if isinstance(value, Mapping) else {})
