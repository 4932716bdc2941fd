"""The seller side's pure core: ``(state, record, now) -> (state, commands, notes)``.

A seller's state counts their sales, keeps their contact, and holds the messages that
arrive before it: a message to a seller goes out addressed from the state, so the
buyer's side never needs the seller's contact.
"""

from __future__ import annotations

from dataclasses import replace

from nudge.flows.plan import FlowSet
from nudge.flows.step_context import Note
from nudge.flows.steps.send import STALE_AFTER_MS
from nudge.flows.triggers.seller import milestone_commands, seller_context
from nudge.models.commands import SendCommand
from nudge.models.sellers import MAX_HELD, RECENT_ORDERS, SellerProfile, SellerSale, SellerState

Outcome = tuple[SellerState, list[SendCommand], list[Note]]


def apply_profile(state: SellerState, profile: SellerProfile, now_ms: int) -> Outcome:
    """An upsert of the seller's contact; held messages go once there is an address."""
    old = state.profile or SellerProfile(state.seller_id)
    merged = SellerProfile(
        state.seller_id,
        email=profile.email if profile.email is not None else old.email,
        name=profile.name if profile.name is not None else old.name,
        phone=profile.phone if profile.phone is not None else old.phone,
        attributes={**(old.attributes or {}), **(profile.attributes or {})}
        if profile.attributes is not None
        else old.attributes,
    )
    if merged == state.profile:
        return state, [], []
    return _release(replace(state, profile=merged), now_ms)


def apply_sale(state: SellerState, sale: SellerSale, flows: FlowSet, now_ms: int) -> Outcome:
    """One more sale, counted once per order; a milestone reached sends its flows'
    messages (never for history: an import of past orders counts, but tells nobody)."""
    if sale.order_id in state.recent_orders:
        return state, [], []
    count = state.sales + 1
    new = replace(
        state,
        sales=count,
        recent_orders=(sale.order_id, *state.recent_orders)[:RECENT_ORDERS],
    )
    if sale.historical:
        return new, [], []
    wanted = milestone_commands(flows.seller_sales(), new, count, now_ms)
    if not wanted:
        return new, [], []
    return _address(new, wanted, now_ms)


def apply_message(state: SellerState, command: SendCommand, now_ms: int) -> Outcome:
    """A message from a buyer's flow, for this seller: addressed, or held."""
    if any(held.id == command.id for held in state.held):
        return state, [], []  # a replay of one already waiting
    return _address(state, [command], now_ms)


def _address(state: SellerState, commands: list[SendCommand], now_ms: int) -> Outcome:
    email = state.email
    if email:
        return state, [_addressed(c, state) for c in commands], []
    held = (*state.held, *commands)
    notes = [
        _note(c, "no_seller_contact", f"more than {MAX_HELD} messages wait for seller contact")
        for c in held[:-MAX_HELD]
    ]
    return replace(state, held=held[-MAX_HELD:]), [], notes


def _release(state: SellerState, now_ms: int) -> Outcome:
    if not state.held or not state.email:
        return state, [], []
    fresh = [c for c in state.held if now_ms - c.due_ms <= STALE_AFTER_MS]
    notes = [
        _note(c, "no_seller_contact", "the seller's contact came too late")
        for c in state.held
        if c not in fresh
    ]
    return replace(state, held=()), [_addressed(c, state) for c in fresh], notes


def _addressed(command: SendCommand, state: SellerState) -> SendCommand:
    assert state.email is not None
    context = replace(command.context, seller=seller_context(state))
    return replace(command, recipient=state.email, context=context)


def _note(command: SendCommand, reason: str, detail: str) -> Note:
    return Note(command.trigger_id, command.customer_id, command.due_ms, reason, detail=detail)
