"""``channel: auto``: the first channel of the step's preference list that can reach
the customer now. A pure function of what the delivery worker read when the message
came due, so that consent given or withdrawn and addresses added meanwhile count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nudge.delivery.channels.base import Channel
from nudge.delivery.policy import effective_consent

#: Why an ``auto`` message went nowhere (``suppressed``).
NO_CHANNEL = "no_channel"


@dataclass(frozen=True, slots=True)
class Pick:
    channel: str
    address: str


def pick(
    order: Sequence[str],
    registry: Mapping[str, Channel],
    *,
    marketing: bool,
    stored_consent: Mapping[str, str],
    carried_consent: Mapping[str, Any],
    customer: Mapping[str, Any],
    configured: Callable[[Channel], bool],
) -> Pick | None:
    """The first channel, in ``order``, that is set up, allowed and has an address.

    Allowed: a marketing message needs ``subscribed`` on that very channel (the stricter
    of what the command carried and what Redis holds, as for any message); a
    transactional one needs only the address.
    """
    for name in order:
        channel = registry.get(name)
        if channel is None or not channel.automatic or not configured(channel):
            continue
        if marketing and channel.personal:
            carried = carried_consent.get(name)
            consent = effective_consent(
                carried if isinstance(carried, str) else None, stored_consent.get(name)
            )
            if consent != "subscribed":
                continue
        address = channel.address(customer)
        if address:
            return Pick(name, address)
    return None
