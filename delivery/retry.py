"""When to try a transiently failed send again, and when to give up: pure arithmetic.

A failed send is not retried in place, which would hold its Kafka partition; the worker
parks the command in the deferred queue with a ``RetryState`` and this module picks the
time. Backoff is exponential with full jitter (a uniformly random wait between 0 and the
capped exponential step), so that a burst of failures, say an SMTP outage, does not come
back as one synchronised burst. A message ends ``failed`` only once its window is over:
``NUDGE_SEND_RETRY_FOR`` after its first failure, or sooner when its trigger's
``expires_after``, counted from the command's due time, ends first.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson

from nudge.models.commands import SendCommand
from nudge.settings import Settings

_MAX_EXPONENT = 40  # 2**40 steps exceed any cap; keeps the arithmetic small


@dataclass(frozen=True, slots=True)
class RetryState:
    """What travels with a parked command, so backoff and window survive restarts."""

    first_failure_ms: int
    retries: int = 0  # retries scheduled so far: the backoff exponent
    attempts: int = 0  # SMTP transactions tried so far, reported in the delivery event
    last_reason: str = ""
    last_error: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> RetryState | None:
        """None for a missing or unreadable value: the command then starts afresh."""
        if raw is None:
            return None
        try:
            return cls(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None

    def summary(self) -> str:
        return f"{self.last_reason}: {self.last_error}" if self.last_error else self.last_reason


@dataclass(frozen=True, slots=True)
class Retry:
    due_ms: int
    state: RetryState


@dataclass(frozen=True, slots=True)
class GiveUp:
    state: RetryState


def expiry_anchor_ms(command: SendCommand) -> int | None:
    """The instant ``expires_after`` counts from: when the message was due (or made)."""
    return command.due_ms or command.created_ms or None


class RetryPolicy:
    def __init__(
        self,
        *,
        retry_for_ms: int,
        backoff_base_ms: int,
        backoff_max_ms: int,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.retry_for_ms = retry_for_ms
        self.backoff_base_ms = backoff_base_ms
        self.backoff_max_ms = backoff_max_ms
        self.rng = rng  # uniform in [0, 1); injected by tests

    @classmethod
    def from_settings(
        cls, settings: Settings, rng: Callable[[], float] = random.random
    ) -> RetryPolicy:
        return cls(
            retry_for_ms=round(settings.send_retry_for * 1000),
            backoff_base_ms=round(settings.send_backoff_s * 1000),
            backoff_max_ms=round(settings.send_backoff_max_s * 1000),
            rng=rng,
        )

    def ceiling_ms(self, retry: int) -> int:
        """The upper bound of the ``retry``-th wait (1-based): base * 2^(retry-1), capped."""
        step = self.backoff_base_ms * 2 ** min(max(retry - 1, 0), _MAX_EXPONENT)
        return min(self.backoff_max_ms, step)

    def backoff_ms(self, retry: int) -> int:
        return int(self.rng() * self.ceiling_ms(retry))

    def deadline_ms(
        self, state: RetryState, *, anchor_ms: int | None, expires_after_ms: int | None
    ) -> int:
        deadline = state.first_failure_ms + self.retry_for_ms
        if expires_after_ms is not None:
            start = anchor_ms if anchor_ms is not None else state.first_failure_ms
            deadline = min(deadline, start + expires_after_ms)
        return deadline

    def after_failure(
        self,
        prior: RetryState | None,
        *,
        now_ms: int,
        reason: str,
        detail: str,
        attempts: int,
        anchor_ms: int | None = None,
        expires_after_ms: int | None = None,
        not_before_ms: int | None = None,
    ) -> Retry | GiveUp:
        """The next try of a command that just failed transiently, or the end of it.

        ``not_before_ms`` is when the other side asked to be tried again (an HTTP
        ``Retry-After``): the backoff waits at least that long, within the window."""
        state = RetryState(
            first_failure_ms=prior.first_failure_ms if prior else now_ms,
            retries=(prior.retries if prior else 0) + 1,
            attempts=(prior.attempts if prior else 0) + attempts,
            last_reason=reason,
            last_error=detail,
        )
        deadline = self.deadline_ms(state, anchor_ms=anchor_ms, expires_after_ms=expires_after_ms)
        if now_ms >= deadline:
            return GiveUp(state)
        # One last try right at the deadline rather than none after a long backoff.
        due = now_ms + self.backoff_ms(state.retries)
        if not_before_ms is not None:
            due = max(due, not_before_ms)
        return Retry(min(due, deadline), state)
