"""``email``: sent over SMTP by the pipeline itself (render, ``build_message``, the pool);
here only what it shares with the other channels: its address and its checks."""

from __future__ import annotations

from email.utils import parseaddr

from nudge.delivery.channels.base import Channel
from nudge.errors import InvalidMessage
from nudge.models.commands import SendCommand


class Email(Channel):
    name = "email"
    address_field = "email"

    def check(self, command: SendCommand) -> None:
        # Email commands carry their address: the stream side waits for one.
        if "@" not in parseaddr(command.recipient)[1]:
            raise InvalidMessage("bad_recipient", repr(command.recipient)[:200])
