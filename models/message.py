"""What a send step says about its message: templates and recommendations.

It travels on the send command, so the delivery worker renders exactly what the
flow said when the message was decided, whatever the flow became since.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class PromoRequest:
    """A code from ``pool`` for this message; it expires ``ttl_ms`` after it is given."""

    pool: str
    ttl_ms: int | None = None
