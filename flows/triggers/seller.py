"""``{seller_sales: {at: [1, 100, 500, 1000]}}``: a marketplace seller reached a number
of sales (orders with their items). The flow runs on the seller side, keyed by seller
id, where the sales are counted: its steps are messages to the seller, sent at once.

Also here: how a buyer's order is split into its sellers' shares, for ``send.to:
seller`` (one message per seller, with only their items) and for the sales count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from nudge.flows.fields import Strict
from nudge.models.commands import SendCommand
from nudge.models.message import Message, MessageContext, Recommendations
from nudge.models.sellers import SellerState

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan

DEFAULT_MILESTONES = (1, 100, 500, 1000)


class SellerSalesSpec(Strict):
    #: the sale counts to congratulate on
    at: list[int] = Field(default_factory=lambda: list(DEFAULT_MILESTONES), min_length=1)

    @field_validator("at")
    @classmethod
    def _positive_and_sorted(cls, value: list[int]) -> list[int]:
        if any(n < 1 for n in value):
            raise ValueError("sale counts start at 1")
        return sorted(set(value))


class SellerSalesTrigger(Strict):
    seller_sales: SellerSalesSpec


def seller_of(item: Mapping[str, Any], order: Mapping[str, Any]) -> str | None:
    """Who sells an order item: its own ``seller_id``, else the order's."""
    return item.get("seller_id") or order.get("seller_id") or None


def shares(order: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The order's items by seller, in order; items with no seller are nobody's share."""
    by_seller: dict[str, list[dict[str, Any]]] = {}
    for item in order.get("items") or ():
        if isinstance(item, dict):
            seller = seller_of(item, order)
            if seller:
                by_seller.setdefault(seller, []).append(item)
    return by_seller


def seller_context(state: SellerState) -> dict[str, Any]:
    """What a message to the seller knows of them."""
    profile = state.profile
    return {
        "seller_id": state.seller_id,
        "name": profile.name if profile else None,
        "email": profile.email if profile else None,
        "phone": profile.phone if profile else None,
        "attributes": dict(profile.attributes or {}) if profile else {},
        "sales": state.sales,
    }


def milestone_commands(
    plans: Iterable[FlowPlan], state: SellerState, milestone: int, now_ms: int
) -> list[SendCommand]:
    """The messages of every seller-sales flow that congratulates on ``milestone``
    sales. Ids are stable per flow, seller and milestone: a replay sends nothing twice."""
    commands = []
    for plan in plans:
        trigger = plan.flow.trigger
        if not isinstance(trigger, SellerSalesTrigger) or milestone not in trigger.seller_sales.at:
            continue
        for ordinal, step in enumerate(_sends(plan.flow.steps)):
            spec = step.send
            commands.append(
                SendCommand(
                    id=f"{plan.id}:seller:{state.seller_id}:{milestone}:{ordinal}",
                    trigger_id=plan.id,
                    kind=spec.template or "seller_milestone",
                    step=ordinal,
                    channel=spec.channel,
                    customer_id=f"seller:{state.seller_id}",
                    recipient="",  # filled in from the seller's contact when sent
                    context=MessageContext(seller=seller_context(state), milestone=milestone),
                    due_ms=now_ms,
                    created_ms=now_ms,
                    marketing=False,
                    message=Message(spec.subject, spec.html, spec.text, spec.preheader),
                    recommendations=None
                    if spec.recommendations is None
                    else Recommendations(
                        spec.recommendations.algorithm,
                        spec.recommendations.count,
                        spec.recommendations.category,
                    ),
                    version=plan.version,
                    seller_id=state.seller_id,
                )
            )
    return commands


def _sends(steps: Sequence[Any]) -> list[Any]:
    from nudge.flows.steps.send import SendStep

    return [step for step in steps if isinstance(step, SendStep)]
