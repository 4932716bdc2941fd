"""The checks a send command must pass before it is judged; one that fails goes to the
dead-letter topic with the reason."""

from __future__ import annotations

from nudge.delivery.channels import AUTO, REGISTRY
from nudge.errors import InvalidMessage
from nudge.models.commands import SendCommand

#: Channels this worker sends on (``channels.REGISTRY``), besides ``auto``.
CHANNELS = frozenset(REGISTRY)


def validate(command: SendCommand) -> None:
    """Field checks ``from_bytes`` does not do; failing ones go to the dead-letter topic."""
    for name in ("id", "trigger_id", "kind", "customer_id"):
        value = getattr(command, name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidMessage("bad_send_command", f"{name} must be a non-empty string")
    if not isinstance(command.step, int) or isinstance(command.step, bool):
        raise InvalidMessage("bad_send_command", "step must be an integer")
    if not isinstance(command.recipient, str):
        raise InvalidMessage("bad_send_command", "recipient must be a string")
    if command.channel == AUTO:
        unknown = [c for c in command.channels if c not in CHANNELS]
        if not command.channels or unknown:
            raise InvalidMessage("unsupported_channel", f"auto over {command.channels!r}")
        return
    channel = REGISTRY.get(command.channel) if isinstance(command.channel, str) else None
    if channel is None:
        raise InvalidMessage("unsupported_channel", repr(command.channel))
    channel.check(command)
