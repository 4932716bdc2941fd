"""What a send command becomes on the wire: its context, the links and names it goes by
outside, rendered and assembled into an email's (signed) bytes or another channel's
HTTP request.

No policy and no claim here: ``pipeline`` decides whether and when a command is sent,
this decides what is sent. Everything that names the message outside (the return path,
``X-Nudge-Ref``, tracking links, a webhook's id) uses its opaque ``ref``, never an
internal id; the unsubscribe and confirm links carry signed tokens.
"""

from __future__ import annotations

from dataclasses import replace
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from nudge.clock import Clock
from nudge.delivery.brand import Brand
from nudge.delivery.channels import REGISTRY, Compose
from nudge.delivery.channels.http import HttpRequest
from nudge.delivery.context import Recommender, build_context
from nudge.delivery.links import utm_params
from nudge.delivery.message import OutgoingMessage, build_message
from nudge.delivery.render import Footer, Renderer
from nudge.delivery.return_path import bounce_domain
from nudge.delivery.sent_messages import SentMessage, message_ref
from nudge.delivery.tracking import TrackingLinks
from nudge.models.commands import SendCommand
from nudge.promo import PromoCode
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.signing import confirm_payload, sign, unsubscribe_payload

if TYPE_CHECKING:
    from nudge.delivery.dkim import DkimSigner

#: How long a double opt-in link stays valid.
CONFIRM_TTL_S = 30 * 86400
EMAIL = "email"


class Composer:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        shared: SharedState,
        recommender: Recommender,
        dkim: DkimSigner | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.shared = shared
        self.recommender = recommender
        self.dkim = dkim
        self.renderer = Renderer()
        self.brand = Brand.from_settings(settings)
        self.sender_name = parseaddr(settings.mail_from)[0] or settings.mail_from
        self.sender_email = parseaddr(settings.mail_from)[1]
        self.bounce_domain = bounce_domain(settings)

    # -- what names the message outside ------------------------------------------
    def ref(self, command: SendCommand) -> str:
        """The opaque name the message goes by outside (return path, tracking links)."""
        return message_ref(command.id, self.settings.secret_key)

    def record(self, command: SendCommand) -> SentMessage:
        """What is kept of a message sent (or refused) for its ref."""
        return SentMessage(
            command_id=command.id,
            customer_id=command.customer_id,
            trigger_id=command.trigger_id,
            kind=command.kind,
            channel=command.channel,
            recipient=command.recipient,
            sent_ms=self.clock.now_ms(),
            variant=command.variant,
            seller_id=command.seller_id,
        )

    def unsubscribe_url(self, command: SendCommand) -> str:
        token = sign(
            unsubscribe_payload(command.customer_id, command.channel),
            self.settings.secret_key,
            self.clock.now_ms(),
            self.settings.unsubscribe_ttl_days * 86400,
        )
        return f"{self.settings.public_url.rstrip('/')}/unsubscribe/{token}"

    def confirm_url(self, command: SendCommand) -> str:
        """The double opt-in link: it confirms this recipient's address for email."""
        token = sign(
            confirm_payload(command.customer_id, command.recipient),
            self.settings.secret_key,
            self.clock.now_ms(),
            CONFIRM_TTL_S,
        )
        return f"{self.settings.public_url.rstrip('/')}/confirm/{token}"

    def tracking_links(self, command: SendCommand) -> TrackingLinks | None:
        """The open pixel and click links of this command's message; None when off."""
        settings = self.settings
        if not (settings.track_opens or settings.track_clicks):
            return None
        return TrackingLinks.for_message(
            tracking_url=settings.tracking_base(),
            public_url=settings.public_url,
            ref=self.ref(command),
            secret=settings.secret_key,
            opens=settings.track_opens,
            clicks=settings.track_clicks,
        )

    # -- the message ----------------------------------------------------------------
    async def compose(
        self, command: SendCommand, customer: dict[str, Any], promo: PromoCode | None
    ) -> OutgoingMessage | HttpRequest:
        """The message to send; a ``PermanentError`` (a template, an address, a header
        that cannot be sent) fails the command."""
        settings = self.settings
        unsubscribe = self.unsubscribe_url(command) if command.marketing else ""
        # An SMS's links are not an email's visits: other channels name themselves.
        medium = settings.utm_medium if command.channel == EMAIL else command.channel
        utm = utm_params(settings.utm_source, medium, command.trigger_id, command.kind)
        context = await build_context(
            command,
            customer=customer,
            promo=promo.as_context() if promo is not None else None,
            shared=self.shared,
            recommender=self.recommender,
            utm=utm,
            unsubscribe_url=unsubscribe,
            confirm_url=self.confirm_url(command),
            shop_url=settings.shop_url,
            sender={
                "name": self.sender_name,
                "email": self.sender_email,
                "postal_address": settings.postal_address,
            },
            brand=self.brand,
            default_locale=settings.default_locale,
            category_pattern=settings.category_url,
        )
        if command.channel != EMAIL:
            compose = Compose(
                command, context, self.renderer, self.ref(command), settings, self.clock.now_ms()
            )
            return REGISTRY[command.channel].request(compose)
        rendered = self.renderer.render(
            command.message,
            kind=command.kind,
            step=command.step,
            context=context,
            utm=utm,
            footer=Footer(self.sender_name, settings.postal_address, unsubscribe or None),
            tracking=self.tracking_links(command),
        )
        message = build_message(
            rendered,
            command_id=command.id,
            mail_from=settings.mail_from,
            recipient=command.recipient,
            unsubscribe_url=unsubscribe or None,
            now_ms=self.clock.now_ms(),
            ref=self.ref(command),
            bounce_domain=self.bounce_domain,
        )
        if self.dkim is not None:
            # The last step: nothing may change the signed bytes after it.
            signed = self.dkim.sign(message.data, self.clock.now_ms() // 1000)
            message = replace(message, data=signed)
        return message
