"""The channels a message can go out on, by name: the one list of them.

Adding a channel is one module with a ``Channel`` subclass and one line in
``REGISTRY``; the pipeline, command checks, ``channel: auto`` and the flow schema
(``flows.fields.Channel``) all read it from here.
"""

from __future__ import annotations

from nudge.delivery.channels.base import Channel, Compose, NotConfigured
from nudge.delivery.channels.email import Email
from nudge.delivery.channels.push import Push
from nudge.delivery.channels.sms import Sms
from nudge.delivery.channels.telegram import Telegram
from nudge.delivery.channels.viber import Viber
from nudge.delivery.channels.webhook import Webhook
from nudge.models.message import AUTO_CHANNEL, CHANNELS

#: ``channel: auto``: the command names the channels to try (``channels``), in order.
AUTO = AUTO_CHANNEL

REGISTRY: dict[str, Channel] = {
    channel.name: channel for channel in (Email(), Webhook(), Sms(), Telegram(), Viber(), Push())
}
# The names are listed in ``models.message`` too, for flows (which do not load these
# modules and their HTTP and crypto libraries): a channel added here must be there.
if tuple(REGISTRY) != CHANNELS:
    raise RuntimeError(f"channel registry {tuple(REGISTRY)} != models.message.CHANNELS")

__all__ = ["AUTO", "REGISTRY", "Channel", "Compose", "NotConfigured"]
