"""The exception hierarchy. Every error nudge raises on purpose is a ``NudgeError``."""

from __future__ import annotations


class NudgeError(Exception):
    """Base of every error raised by nudge on purpose."""


class InvalidMessage(NudgeError):
    """An input record that can never be used: it goes to the dead-letter topic.

    ``reason`` is a short machine-readable code, ``detail`` says what was wrong.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ConfigError(NudgeError):
    """A trigger definition or setting that cannot be applied."""


class TransientError(NudgeError):
    """A failure worth retrying: a timeout, a dropped connection, a 4xx SMTP reply."""


class PermanentError(NudgeError):
    """A failure that retrying cannot fix: a rejected recipient, a 5xx SMTP reply."""


class InvalidToken(NudgeError):
    """A signed link token that was tampered with, malformed, or has expired.

    ``reason`` is ``malformed``, ``bad_signature`` or ``expired``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
