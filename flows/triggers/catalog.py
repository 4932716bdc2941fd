"""``price_drop`` and ``back_in_stock``: a catalogue change, told to the customers who
subscribed to the product, or viewed or carted it within ``lookback``.

Finding them scans no customers: the clickstream is repartitioned by product
(``product-interest``) into a product-keyed index (``ProductAudience``), which a
change on the co-partitioned ``catalog-changes`` reads to fan out one customer-keyed
``CatalogSignal`` per member of its audience; the customer's own worker then starts
the runs, with the customer's state at hand (consent, reentry, smart sending).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from nudge.flows.customer_context import base_context
from nudge.flows.fields import Duration, Strict
from nudge.flows.starts import Start
from nudge.models.catalog import CatalogChange, CatalogSignal, Interest
from nudge.models.message import MessageContext
from nudge.models.state import CustomerState, Run

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet

Audience = Literal["subscribed", "viewed", "carted"]
EVERYONE: tuple[Audience, ...] = ("subscribed", "viewed", "carted")


class BackInStockSpec(Strict):
    audience: list[Audience] = Field(default_factory=lambda: list(EVERYONE), min_length=1)
    #: how far back a view or a cart counts
    lookback: Duration = 30 * 86_400_000


class PriceDropSpec(BackInStockSpec):
    #: smaller drops are not worth a message
    min_drop_percent: float | None = Field(None, gt=0, lt=100)


class PriceDropTrigger(Strict):
    price_drop: PriceDropSpec


class BackInStockTrigger(Strict):
    back_in_stock: BackInStockSpec


# -- the product-keyed index --------------------------------------------------------
#: Subscription bits of a member, by change type.
SUBSCRIBED_TO = {"price_drop": 1, "back_in_stock": 2}
#: Viewers and carters kept per product, the most recent first; subscribers are kept
#: apart from this bound, since each asked for the message.
DEFAULT_MEMBERS_CAP = 20_000
DEFAULT_KEEP_MS = 30 * 86_400_000


@dataclass(frozen=True, slots=True)
class Member:
    viewed_ms: int = 0
    carted_ms: int = 0
    subscribed: int = 0  # bits of SUBSCRIBED_TO

    @property
    def last_ms(self) -> int:
        return max(self.viewed_ms, self.carted_ms)


@dataclass(frozen=True, slots=True)
class ProductAudience:
    """Who showed interest in one product; a value of the ``product-audience`` table.
    Never changed in place: every change makes a new one."""

    product_id: str
    partition: int
    members: Mapping[str, Member] = field(default_factory=dict)


def note_interests(
    audience: ProductAudience,
    interests: Iterable[Interest],
    now_ms: int,
    keep_ms: int = DEFAULT_KEEP_MS,
    cap: int = DEFAULT_MEMBERS_CAP,
) -> ProductAudience:
    """Fold interests into the audience; views and carts older than ``keep_ms`` and
    beyond the ``cap`` most recent are forgotten."""
    members = dict(audience.members)
    for interest in interests:
        old = members.get(interest.customer_id) or Member()
        if interest.kind == "viewed":
            new = replace(old, viewed_ms=max(old.viewed_ms, interest.ts))
        elif interest.kind == "carted":
            new = replace(old, carted_ms=max(old.carted_ms, interest.ts))
        else:
            new = replace(
                old, subscribed=old.subscribed | SUBSCRIBED_TO.get(interest.topic or "", 0)
            )
        members[interest.customer_id] = new
    horizon = now_ms - keep_ms
    kept = {c: m for c, m in members.items() if m.subscribed or m.last_ms >= horizon}
    casual = [c for c, m in kept.items() if not m.subscribed]
    if len(casual) > cap:
        casual.sort(key=lambda c: kept[c].last_ms, reverse=True)
        for customer_id in casual[cap:]:
            del kept[customer_id]
    return replace(audience, members=kept)


def keep_ms(plans: Iterable[FlowPlan]) -> int:
    """How long views and carts must be remembered: the longest lookback of any flow,
    and 30 days at least, so a flow enabled later finds a month of interest."""
    specs = [_spec(p) for p in plans]
    return max([DEFAULT_KEEP_MS, *(s.lookback for s in specs if s is not None)])


def _spec(plan: FlowPlan) -> BackInStockSpec | None:
    trigger = plan.flow.trigger
    if isinstance(trigger, PriceDropTrigger):
        return trigger.price_drop
    if isinstance(trigger, BackInStockTrigger):
        return trigger.back_in_stock
    return None


def fan_out(
    audience: ProductAudience, change: CatalogChange, plans: Iterable[FlowPlan], now_ms: int
) -> tuple[list[CatalogSignal], ProductAudience]:
    """The signals a change sends to its audience, one per customer, naming the flows
    it starts; and the audience after it: a back-in-stock subscription is used up by
    the message it asked for (a price-drop one stays)."""
    base_ms = min(change.ts, now_ms)
    wanted: dict[str, tuple[list[str], set[str]]] = {}
    for plan in plans:
        spec = _spec(plan)
        if spec is None or not plan.enabled or _type_of(plan) != change.type:
            continue
        if isinstance(spec, PriceDropSpec) and spec.min_drop_percent is not None:
            drop = change.drop_percent
            if drop is None or drop < spec.min_drop_percent:
                continue
        horizon = base_ms - spec.lookback
        bit = SUBSCRIBED_TO[change.type]
        for customer_id, member in audience.members.items():
            reasons = set()
            if "subscribed" in spec.audience and member.subscribed & bit:
                reasons.add("subscribed")
            if "viewed" in spec.audience and member.viewed_ms and member.viewed_ms >= horizon:
                reasons.add("viewed")
            if "carted" in spec.audience and member.carted_ms and member.carted_ms >= horizon:
                reasons.add("carted")
            if reasons:
                flows, why = wanted.setdefault(customer_id, ([], set()))
                flows.append(plan.id)
                why.update(reasons)
    signals = [
        CatalogSignal(
            event_id=f"{change.event_id}:{customer_id}",
            type=change.type,
            customer_id=customer_id,
            product_id=change.product_id,
            ts=base_ms,
            flows=tuple(flows),
            old_price=change.old_price,
            new_price=change.new_price,
            currency=change.currency,
            reasons=tuple(sorted(why)),
        )
        for customer_id, (flows, why) in sorted(wanted.items())
    ]
    after = audience
    if change.type == "back_in_stock" and signals:
        bit = SUBSCRIBED_TO["back_in_stock"]
        told = {s.customer_id for s in signals if "subscribed" in s.reasons}
        members = {
            c: replace(m, subscribed=m.subscribed & ~bit) if c in told else m
            for c, m in audience.members.items()
        }
        after = replace(audience, members=members)
    return signals, after


def _type_of(plan: FlowPlan) -> str:
    return "price_drop" if isinstance(plan.flow.trigger, PriceDropTrigger) else "back_in_stock"


# -- the customer-keyed side --------------------------------------------------------
def starts_for_signal(flows: FlowSet, signal: CatalogSignal, base_ms: int) -> list[Start]:
    """A run per flow the signal names that is still on and of the signal's type, keyed
    by product: a customer may hear of two products' drops, not twice of one."""
    data = signal.event_data()
    starts = []
    for flow_id in signal.flows:
        plan = flows.get(flow_id)
        if plan is None or not plan.enabled or _spec(plan) is None:
            continue
        if _type_of(plan) == signal.type:
            starts.append(Start(plan, base_ms, {"event": data}, signal.product_id))
    return starts


def message_context(state: CustomerState, run: Run) -> MessageContext:
    """The product the news is about, at its new price; a price drop also carries the
    old one, which the built-in template strikes through. ``event`` has both, and
    ``reasons`` (subscribed, viewed, carted) for a template that words it per reason."""
    event: dict[str, Any] = run.payload.get("event") or {}
    item: dict[str, Any] = {"product_id": event.get("product_id"), "quantity": 1}
    if event.get("new_price") is not None:
        item["price"] = event["new_price"]
        item["currency"] = event.get("currency") or ""
    if event.get("type") == "price_drop" and event.get("old_price") is not None:
        item["old_price"] = event["old_price"]
    return replace(base_context(state), items=(item,) if item["product_id"] else (), event=event)
