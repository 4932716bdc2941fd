"""What a send step says about its message: templates and recommendations.

It travels on the send command, so the delivery worker renders exactly what the
flow said when the message was decided, whatever the flow became since.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

#: The built-in templates a send step may name (``template: welcome``): they fill
#: whatever subject, html or text the step leaves out. The abandonment kinds use
#: theirs; other flows default to ``flow``, a neutral one.
BUILT_IN_TEMPLATES = (
    "abandoned_cart",
    "abandoned_view",
    "abandoned_category",
    "abandoned_search",
    "welcome",
    "thank_you",
    "order_status",
    "double_opt_in",
    "win_back",
    "birthday",
    "price_drop",
    "back_in_stock",
    "seller_order_status",
    "seller_milestone",
    "flow",
)

#: The channels a message can go out on, each implemented in ``delivery.channels``
#: (its registry checks it has them all). ``auto`` leaves the choice among a send
#: step's ``channels`` to the delivery worker, when the message is due.
CHANNELS = ("email", "webhook", "sms", "telegram", "viber", "push")
AUTO_CHANNEL = "auto"

#: ``recommendations.category`` value meaning "the category this message is about".
CURRENT_CATEGORY = "current"


@dataclass(frozen=True, slots=True)
class Message:
    """Jinja2 templates; any left empty comes from the built-in template of the kind."""

    subject: str | None = None
    html: str | None = None
    text: str | None = None
    preheader: str | None = None


@dataclass(frozen=True, slots=True)
class Recommendations:
    algorithm: str = "popular"
    count: int = 4
    #: for ``popular``: a category id, or ``"current"`` for the message's own category
    #: (the abandoned category, else the category of the message's first product)
    category: str | None = None


#: What a ``webhook`` call may use; nudge sets the signature headers itself.
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")
WEBHOOK_RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "idempotency-key", "content-length"}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """A send step's ``webhook``: where to call and what; ``body`` is a Jinja2 template
    (a JSON document of the message when left out)."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None

    def problem(self) -> str | None:
        """What is wrong with the call's fixed parts, or None. Checked where flows are
        parsed and again by the delivery worker (commands may come from elsewhere)."""
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return f"url must be an http(s) URL, not {self.url!r}"
        if not isinstance(self.method, str) or self.method.upper() not in WEBHOOK_METHODS:
            return f"method must be one of {', '.join(WEBHOOK_METHODS)}, not {self.method!r}"
        if not isinstance(self.headers, Mapping):
            return "headers must be a mapping of names to values"
        for name, value in self.headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                return f"header name {name!r} is not a token"
            if name.lower() in WEBHOOK_RESERVED_HEADERS:
                return f"header {name!r} is set by nudge"
            if "\r" in str(value) or "\n" in str(value):
                return f"header {name!r} holds a line break"
        return None


@dataclass(frozen=True, slots=True)
class PromoRequest:
    """A code from ``pool`` for this message; it expires ``ttl_ms`` after it is given."""

    pool: str
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the stream side knew of one message when it decided it; the delivery side
    enriches it (catalogue, recommendations, links) into what templates see.

    One meaning per field, whatever the flow: the names are listed here and nowhere
    else. Products are ``{product_id, quantity?, price?, old_price?, currency?,
    seller_id?}``; events and orders are as the storefront sent them.
    """

    #: profile fields, consent and tags (``Profile.as_context``)
    customer: Mapping[str, Any] = field(default_factory=dict)
    #: what the message is about: the cart, a viewed product, an order's items
    items: tuple[Mapping[str, Any], ...] = ()
    #: products viewed, then carted, oldest first: what recommendations start from
    history: tuple[str, ...] = ()
    #: the latest products bought, newest first: never recommended again
    bought: tuple[str, ...] = ()
    #: an abandoned category: ``{category_id}``
    category: Mapping[str, Any] | None = None
    #: an abandoned search
    search_query: str | None = None
    #: the event that started the run (or the awaited one)
    event: Mapping[str, Any] | None = None
    #: the order, in flows triggered by one (only a seller's items, to a seller)
    order: Mapping[str, Any] | None = None
    #: to a marketplace seller: ``seller_id, name, email, phone, attributes, sales``
    seller: Mapping[str, Any] | None = None
    #: the sales a ``seller_sales`` flow congratulates on
    milestone: int | None = None

    @classmethod
    def from_data(cls, data: Any) -> MessageContext:
        """From a command's JSON; names this version does not know are left out."""
        if not isinstance(data, Mapping):
            raise TypeError("context must be an object")
        values = {name: data[name] for name in _CONTEXT_FIELDS if data.get(name) is not None}
        for name in ("items", "history", "bought"):
            if name in values:
                values[name] = tuple(values[name])
        if isinstance(values.get("category"), str):  # commands from before flows
            values["category"] = {"category_id": values["category"]}
        return cls(**values)


_CONTEXT_FIELDS = tuple(f.name for f in fields(MessageContext))
