"""``send``: one message on a channel, to the customer, the order's sellers, or a
fixed address (internal alerts)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from nudge.flows.conditions import ConditionFailed, holds, variables
from nudge.flows.fields import AutoChoice, Channel, Duration, Strict, Template
from nudge.flows.step_context import StepContext, StepResult
from nudge.flows.triggers import message_context
from nudge.flows.triggers.seller import shares
from nudge.models.commands import SendCommand
from nudge.models.message import (
    AUTO_CHANNEL,
    BUILT_IN_TEMPLATES,
    Message,
    MessageContext,
    PromoRequest,
    WebhookCall,
)
from nudge.models.message import Recommendations as MessageRecommendations
from nudge.models.state import CustomerState, FlowMark, Run

ALGORITHMS = ("popular", "similar", "personal", "also_bought", "recently_viewed", "search")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


if TYPE_CHECKING:
    Algorithm = str
else:  # the names listed once, above
    Algorithm = Literal[ALGORITHMS]


class Recommendations(Strict):
    algorithm: Algorithm = "popular"
    count: int = Field(4, ge=1, le=50)
    #: for ``popular``: a category id, or ``"current"`` for the message's own category
    category: str | None = Field(None, min_length=1)

    @field_validator("category", mode="before")
    @classmethod
    def _category_id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _category_needs_popular(self) -> Recommendations:
        if self.category is not None and self.algorithm != "popular":
            raise ValueError("'category' applies to the popular algorithm")
        return self


class Promo(Strict):
    """A code from a pool, one per run and step; it expires ``ttl`` after it is given."""

    pool: str = Field(pattern=POOL_NAME)
    ttl: Duration | None = None


class Webhook(Strict):
    """``channel: webhook``: an HTTP call, signed (Standard Webhooks), retried."""

    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    #: the request body, a template (a JSON document of the message when left out)
    body: Template | None = None

    @model_validator(mode="after")
    def _call(self) -> Webhook:
        problem = self.call().problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def call(self) -> WebhookCall:
        return WebhookCall(self.url, self.method, dict(self.headers), self.body)


if TYPE_CHECKING:
    BuiltInTemplate = str
else:  # the names listed once, in models.message
    BuiltInTemplate = Literal[BUILT_IN_TEMPLATES]


class SendSpec(Strict):
    #: ``auto``: the first of ``channels`` with consent and an address, picked by the
    #: delivery worker when the message is due
    channel: Channel = "email"
    channels: tuple[AutoChoice, ...] | None = Field(None, min_length=1)
    webhook: Webhook | None = None
    subject: Template | None = None
    html: Template | None = None
    text: Template | None = None
    preheader: Template | None = None
    recommendations: Recommendations | None = None
    promo: Promo | None = None
    #: the built-in template for the parts left out (the flow's kind by default)
    template: BuiltInTemplate | None = None
    #: ``customer``, ``seller`` (each seller of the order's items, with only their
    #: items), or a fixed email address.
    to: str = "customer"

    @field_validator("to")
    @classmethod
    def _recipient(cls, value: str) -> str:
        if value in ("customer", "seller") or _ADDRESS.match(value):
            return value
        raise ValueError(f"'to' is customer, seller or an email address, not {value!r}")

    @model_validator(mode="after")
    def _channel_parts(self) -> SendSpec:
        if (self.channel == AUTO_CHANNEL) != (self.channels is not None):
            raise ValueError("'channels' (an order of preference) goes with channel: auto")
        if self.channels is not None and len(set(self.channels)) != len(self.channels):
            raise ValueError("'channels' names a channel twice")
        if (self.channel == "webhook") != (self.webhook is not None):
            raise ValueError("'webhook' ({url, method, headers, body}) goes with channel: webhook")
        if self.channel != "email" and self.to != "customer":
            raise ValueError(f"'to: {self.to}' is for email; {self.channel} goes to the customer")
        return self


class SendStep(Strict):
    send: SendSpec


#: A message due this long ago (a replay after a long outage) no longer describes a
#: live moment: the run ends instead.
STALE_AFTER_MS = 24 * 3600 * 1000
#: A due send waiting for the customer's address looks again after this long...
ADDRESS_RECHECK_MIN_MS = 10_000
#: ...and at least this often, however old its run.
ADDRESS_RECHECK_MAX_MS = 5 * 60_000
#: Marks, in a run's payload, one that waits for an address (see ``awaits_address``).
AWAITING_ADDRESS = "awaiting_address"
#: Marks one whose marketing message waits for a pending double opt-in.
AWAITING_CONSENT = "awaiting_consent"


def execute(step: SendStep, ctx: StepContext) -> StepResult:
    run, state, plan = ctx.run, ctx.state, ctx.plan
    flow = plan.flow
    if ctx.now_ms - run.due_ms > STALE_AFTER_MS:
        return ctx.end("stale")
    spec = step.send
    profile = state.profile
    # ``auto`` and webhooks are judged by the delivery worker (see ``delivery.channels``).
    consent = profile.consent.get(spec.channel)
    if flow.marketing and consent == "unsubscribed":
        return ctx.end("no_consent")
    if flow.marketing and consent == "pending":
        # A sign-up waiting for its double opt-in: the message waits for the
        # confirmation (released at once when it comes), as long as it is not stale.
        since = run.payload.get(AWAITING_CONSENT, ctx.now_ms)
        if ctx.now_ms - since <= STALE_AFTER_MS:
            return ctx.block(park(run, ctx.now_ms, AWAITING_CONSENT, since))
        return ctx.end("no_consent")
    # Judged once consent allows marketing at all: a sign-up awaiting its double
    # opt-in is parked above, and its filter (often about consent) read after.
    if flow.filter is not None:
        try:
            if not holds(flow.filter, variables(state, run)):
                return ctx.end("filter")
        except ConditionFailed as exc:
            return ctx.end("condition_failed", detail=str(exc))
    if spec.to == "seller":
        return _to_sellers(step, ctx)
    recipient = _recipient(spec, profile.email)
    if recipient is None:
        if awaits_address(state, run, ctx.now_ms):
            return ctx.block(park(run, ctx.now_ms, AWAITING_ADDRESS))
        return ctx.end("no_address")
    if flow.marketing and _held_by_smart_sending(ctx):
        return ctx.end("smart_sending")
    context = message_context(plan, state, run)
    if context is None:
        return ctx.end("nothing_to_send")
    command = _command(step, ctx, recipient, context)
    return _proceed(ctx, (command,))


def _recipient(spec: SendSpec, email: str | None) -> str | None:
    """Who the command goes to; "" leaves the address to the delivery worker, which
    reads the customer's current one for the channel (phone, chat id, ...)."""
    if spec.channel == "email":
        return (email if spec.to == "customer" else spec.to) or None
    if spec.webhook is not None:
        return spec.webhook.url
    return ""


def _command(
    step: SendStep, ctx: StepContext, recipient: str, context: MessageContext
) -> SendCommand:
    spec, run, plan, flow = step.send, ctx.run, ctx.plan, ctx.plan.flow
    ordinal = plan.send_ordinals[run.at]
    return SendCommand(
        id=command_id(flow.id, ctx.state.customer_id, run.episode, ordinal, run.key),
        trigger_id=flow.id,
        kind=spec.template or plan.kind,
        step=ordinal,
        channel=spec.channel,
        customer_id=ctx.state.customer_id,
        recipient=recipient,
        context=context,
        due_ms=run.due_ms,
        created_ms=ctx.now_ms,
        marketing=flow.marketing,
        message=Message(spec.subject, spec.html, spec.text, spec.preheader),
        recommendations=_recommendations(spec.recommendations),
        version=plan.version,
        variant=run.variant,
        expires_at_ms=None if flow.expires_after is None else run.due_ms + flow.expires_after,
        promo=None if spec.promo is None else PromoRequest(spec.promo.pool, spec.promo.ttl),
        priority=flow.priority,
        on_cap=flow.on_cap,
        webhook=spec.webhook.call() if spec.webhook is not None else None,
        channels=spec.channels or (),
    )


def _to_sellers(step: SendStep, ctx: StepContext) -> StepResult:
    """One message per seller of the order, each with only that seller's items; the
    seller side addresses it (``streams.logic.seller``)."""
    context = message_context(ctx.plan, ctx.state, ctx.run)
    order = context.order if context is not None else None
    if context is None or order is None or not (by_seller := shares(order)):
        return ctx.end("no_seller")
    commands = []
    for seller_id, items in by_seller.items():
        total = round(sum(i.get("price", 0.0) * i.get("quantity", 1) for i in items), 2)
        share = replace(
            context, items=tuple(items), order={**order, "items": items, "total": total}
        )
        command = _command(step, ctx, "", share)
        commands.append(replace(command, id=f"{command.id}:{seller_id}", seller_id=seller_id))
    return _proceed(ctx, tuple(commands))


def _proceed(ctx: StepContext, commands: tuple[SendCommand, ...]) -> StepResult:
    run, state, flow = ctx.run, ctx.state, ctx.plan.flow
    marked = state.evolve(flow_marks=_sent(state, flow.id, ctx.now_ms, run.episode))
    if AWAITING_ADDRESS in run.payload or AWAITING_CONSENT in run.payload:
        waited = (AWAITING_ADDRESS, AWAITING_CONSENT)
        run = replace(run, payload={k: v for k, v in run.payload.items() if k not in waited})
    return ctx.proceed(state=marked, commands=commands, run=run)


def command_id(flow_id: str, customer_id: str, episode: int, ordinal: int, key: str = "") -> str:
    """Stable: a replayed run sends the same id, and delivery keeps it to one message."""
    if key:
        return f"{flow_id}:{customer_id}:{key}:{episode}:{ordinal}"
    return f"{flow_id}:{customer_id}:{episode}:{ordinal}"


def awaits_address(state: CustomerState, run: Run, now_ms: int) -> bool:
    """A due send to a customer with no address yet: the profile may be on its way.

    Input topics are consumed independently, and after a crash both are replayed: a
    cart event can be applied before the sign-up that came first, its run already
    due. Ending the run then would lose the message; it waits for the address
    instead, as long as the run is not stale. Opted-out customers do not wait.
    """
    return (
        state.profile.consent.get("email") != "unsubscribed"
        and now_ms - run.episode <= STALE_AFTER_MS
    )


def park(run: Run, now_ms: int, marker: str, value: object = True) -> Run:
    """Look again later, less often the older the run (anonymous carts are many)."""
    wait = min(max((now_ms - run.episode) // 4, ADDRESS_RECHECK_MIN_MS), ADDRESS_RECHECK_MAX_MS)
    return replace(run, due_ms=now_ms + wait, payload={**run.payload, marker: value})


def _held_by_smart_sending(ctx: StepContext) -> bool:
    """Another run of this flow mailed the customer within the window: hold this one.
    The later steps of one run are never held back by its own earlier message."""
    setting = ctx.plan.flow.smart_sending
    window = ctx.flows.smart_sending_ms if setting is True else int(setting)
    mark = ctx.state.mark_of(ctx.run.flow_id)
    return (
        window > 0
        and mark is not None
        and mark.sent_episode != ctx.run.episode
        and ctx.now_ms - mark.sent_ms < window
    )


def _sent(state: CustomerState, flow_id: str, now_ms: int, episode: int) -> tuple[FlowMark, ...]:
    old = state.mark_of(flow_id) or FlowMark(flow_id)
    new = replace(old, sent_ms=now_ms, sent_episode=episode)
    return (*(m for m in state.flow_marks if m.flow_id != flow_id), new)


def _recommendations(wanted: Recommendations | None) -> MessageRecommendations | None:
    if wanted is None:
        return None
    return MessageRecommendations(wanted.algorithm, wanted.count, wanted.category)
