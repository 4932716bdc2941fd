"""Render a flow's templates once, in the real sandbox, before the flow is published.

Parsing a definition only checks template syntax. What the sandbox refuses while
rendering (an unsafe attribute, a method it forbids, an unknown filter, a TypeError)
would otherwise fail every email of the flow at send time, one customer at a time.
So ``nudge triggers apply`` renders each send step's subject/preheader/html/text with
the delivery worker's ``Renderer`` against a sample context shaped as
``delivery.context.build_context`` builds it, and refuses the file on any error.

Only what fails for every customer is refused. A template may rightly use data that
this sample lacks and some customers have (``customer.attributes.tier``, a third
item): see :class:`_AbsentData`.
"""

from __future__ import annotations

import traceback
from typing import Any, NoReturn

from jinja2 import TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.sandbox import SecurityError
from jinja2.utils import missing

from nudge.delivery.brand import Brand
from nudge.delivery.links import add_params, utm_params
from nudge.delivery.render import Renderer, TemplateFailed
from nudge.delivery.totals import line_total, subtotal
from nudge.flows.definition import walk_steps
from nudge.flows.plan import FlowPlan
from nudge.flows.steps.send import SendStep
from nudge.flows.triggers.seller import seller_context
from nudge.models.events import OrderEvent, OrderItem, event_data
from nudge.models.sellers import SellerProfile, SellerState
from nudge.templating import as_record

_SHOP = "https://shop.example.com"
_UNSUBSCRIBE = "https://nudge.example.com/unsubscribe/sample-token.signature"


class _AbsentData(Undefined):
    """An undefined value as the check sees it.

    * A key or attribute missing from real data (``customer.attributes.tier``,
      ``items[3]``, a ``None`` first name's ``.upper``) may be there for another
      customer: whatever is done with it yields another absent value, never an error.
    * A name the context does not have at all is missing for every customer, so
      using it (``{{ nope.deeper }}``) fails as it does at send time. Printing or
      testing it is fine there, and here.
    * An unsafe attribute (``''.__class__``) fails however it is used, even where the
      renderer would quietly print it as empty: no template needs one.
    """

    __slots__ = ()

    def _is_absent_data(self) -> bool:
        return self._undefined_exception is UndefinedError and self._undefined_obj is not missing

    def _fail(self) -> NoReturn:
        raise self._undefined_exception(self._undefined_message)

    def _absent(self, *args: Any, **kwargs: Any) -> Any:
        if not self._is_absent_data():
            self._fail()
        return self

    def _compare(self, other: Any) -> bool:
        if not self._is_absent_data():
            self._fail()
        return False

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)  # keep Python's protocol probing working
        return self._absent()

    # Undefined types these as raising (-> NoReturn); absent data converts to zero.
    def __int__(self) -> int:  # type: ignore[override]
        self._absent()
        return 0

    def __float__(self) -> float:  # type: ignore[override]
        self._absent()
        return 0.0

    def __complex__(self) -> complex:  # type: ignore[override]
        self._absent()
        return 0j

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail()
        return ""

    def __bool__(self) -> bool:
        if self._undefined_exception is SecurityError:
            self._fail()
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = _absent
    __mul__ = __rmul__ = __div__ = __rdiv__ = _absent
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _absent
    __mod__ = __rmod__ = __pos__ = __neg__ = __pow__ = __rpow__ = _absent
    __call__ = __getitem__ = _absent
    __lt__ = __le__ = __gt__ = __ge__ = _compare  # type: ignore[assignment]


def _product(product_id: str, title: str, price: float, quantity: int | None) -> dict[str, Any]:
    product: dict[str, Any] = {
        "product_id": product_id,
        "title": title,
        "url": f"{_SHOP}/p/{product_id}",
        "image_url": f"https://cdn.example.com/{product_id}.jpg",
        "price": price,
        "currency": "EUR",
        "old_price": round(price * 1.2, 2),
        "description": f"{title}, as described in the catalogue feed.",
        "category_path": ["Shoes", "Trail"],
        "params": {"Size": "42", "Colour": "blue"},
    }
    if quantity is not None:
        product["quantity"] = quantity
    return product


def sample_context(plan: FlowPlan, step: int, algorithm: str = "popular") -> dict[str, Any]:
    """A context with every documented name set, as ``build_context`` shapes it.

    Values are filled in, not left ``None``, so that ``{% if %}`` branches run too.
    """
    utm = utm_params("nudge", "email", plan.id, plan.kind)
    recommendations = [
        _product("p2", "Rain Jacket", 120.0, None),
        _product("p3", "Socks", 9.5, None),
    ]
    query = "trail shoes"
    items = [_product("p1", "Trail Shoe", 89.0, 2)]
    items[0]["line_total"] = line_total(items[0])
    return {
        "customer": {
            "customer_id": "sample-customer",
            "email": "ann@example.com",
            "phone": "+4915112345678",
            "first_name": "Ann",
            "last_name": "Example",
            "timezone": "Europe/Berlin",
            "consent": {"email": "subscribed"},
            "attributes": {"tier": "gold", "orders": 3},
            "tags": ["vip"],
        },
        "recipient": {
            "email": "ann@example.com",
            "customer_id": "sample-customer",
            "recommendations": {algorithm: {"recommendations": recommendations}},
        },
        "items": items,
        "subtotal": subtotal(items),
        "category": {"category_id": "shoes", "name": "Shoes", "url": f"{_SHOP}/category/shoes"},
        "brand": Brand(name="Demo Shop", logo_url="https://cdn.example.com/logo.png"),
        "locale": "en",
        "search_query": query,
        "recommendations": recommendations,
        "unsubscribe_url": _UNSUBSCRIBE,
        "confirm_url": "https://nudge.example.com/confirm/sample-token.signature",
        "shop_url": _SHOP,
        "cart_url": add_params(f"{_SHOP}/cart", utm),
        "search_url": add_params(f"{_SHOP}/search?q=trail+shoes", utm),
        "utm_params": dict(utm),
        "sender": {
            "name": "Demo Shop",
            "email": "shop@example.com",
            "postal_address": "Demo Shop, 1 Example Street",
        },
        "promo": {"code": "WELCOME-7KQ2M9XA", "expires_at": 1_768_435_200_000},
        "event": as_record(SAMPLE_ORDER),
        "order": as_record(SAMPLE_ORDER),
        "trigger": {"id": plan.id, "kind": plan.kind, "step": step},
        "seller": as_record(seller_context(SAMPLE_SELLER)),
        "milestone": 100,
    }


SAMPLE_SELLER = SellerState(
    "sample-seller",
    0,
    SellerProfile("sample-seller", "s@example.com", "Trail Supply", None, {"tier": "gold"}),
    sales=100,
)

#: An order as a flow's run keeps it (``event_data``): every field is there.
SAMPLE_ORDER: dict[str, Any] = event_data(
    OrderEvent(
        event_id="sample-event", type="order_placed", order_id="A-1001",
        customer_id="sample-customer", ts=1_767_225_600_000,
        items=[OrderItem(product_id="p1", quantity=2, price=89.0, seller_id="sample-seller")],
        total=178.0, currency="EUR", status="paid",
    )
)  # fmt: skip


def _line(exc: BaseException) -> str:
    """``line N: `` where ``exc`` arose in the template, if that is known."""
    if isinstance(exc, TemplateSyntaxError):
        return f"line {exc.lineno}: "
    # Jinja rewrites tracebacks so that template frames carry template line numbers.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"]
    return f"line {frames[-1].lineno}: " if frames else ""


def _unknown_names(renderer: Renderer, source: str, *, is_html: bool) -> list[str]:
    """Filters and tests the sandbox lacks, also in branches the sample does not take
    (Jinja only complains about those when such a branch runs)."""
    env = renderer.environment(is_html=is_html)
    problems = []
    for node in env.parse(source).find_all((nodes.Filter, nodes.Test)):
        is_filter = isinstance(node, nodes.Filter)
        if node.name not in (env.filters if is_filter else env.tests):
            kind = "filter" if is_filter else "test"
            problems.append(f"line {node.lineno}: no {kind} named {node.name!r}")
    return problems


def _check_message(
    renderer: Renderer, plan: FlowPlan, step: SendStep, ordinal: int, prefix: str
) -> list[str]:
    spec = step.send
    algorithm = spec.recommendations.algorithm if spec.recommendations else "popular"
    context = sample_context(plan, ordinal, algorithm)
    # html and text see the rendered subject, as when sending.
    context["subject"] = "Ann, you left something in your cart"
    errors: list[str] = []
    for name in ("subject", "preheader", "html", "text"):
        source = getattr(spec, name)
        if source is None:
            continue
        where = f"{plan.id}.{prefix}{name}"
        is_html = name == "html"
        unknown = _unknown_names(renderer, source, is_html=is_html)
        if unknown:
            errors.extend(f"{where}: {problem}" for problem in unknown)
            continue
        try:
            out = renderer.render_field(name, source, context, is_html=is_html)
        except TemplateFailed as failed:
            cause = failed.__cause__ or failed
            detail = " ".join(str(cause).split())  # one line per error in the report
            errors.append(f"{where}: {_line(cause)}{type(cause).__name__}: {detail}")
            continue
        if name == "subject":
            context["subject"] = out
    return errors


def check_templates(plan: FlowPlan) -> list[str]:
    """Every render-time error of the flow's own templates, as ``id.path: error``.

    Fields a send step leaves out use the built-in templates, which have their own
    tests. A shorthand definition's errors are named as it was written (``subject``,
    ``follow_up.subject``).
    """
    renderer = Renderer(undefined=_AbsentData)
    errors: list[str] = []
    for path, step in walk_steps(plan.flow.steps):
        if not isinstance(step, SendStep):
            continue
        ordinal = _ordinal(plan, step)
        shorthand_prefix = "" if ordinal == 0 else "follow_up."
        prefix = shorthand_prefix if plan.shorthand else f"{path}.send."
        errors += _check_message(renderer, plan, step, ordinal, prefix)
    return errors


def _ordinal(plan: FlowPlan, step: SendStep) -> int:
    for path, ordinal in plan.send_ordinals.items():
        if plan.step_at(path) is step:
            return ordinal
    return 0
