"""What became of one send command: the delivery pipeline's answer to the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.exceptions import RedisError

#: ``retry``: a transient failure, to be tried again later (``until_ms`` is unset: the
#: worker's ``RetryPolicy`` picks the time).
Status = Literal["sent", "failed", "suppressed", "deferred", "duplicate", "retry"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    reason: str = ""
    attempts: int = 0
    detail: str = ""
    until_ms: int | None = None
    #: the channel it went out on, when the command left the choice (``auto``)
    channel: str | None = None


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, RedisError):
        return "redis_unavailable"
    return str(getattr(exc, "reason", "") or type(exc).__name__)
