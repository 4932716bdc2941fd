"""Retrying a handler's call to an outside service until it answers.

A batch whose Redis write failed must not be dropped: the handler waits here, with
backoff, and goes on where it stopped. While it waits, its partitions fill Faust's
buffers and fetching pauses, so nothing piles up; ``Waits`` tells ``/health`` what
the worker is waiting for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nudge.waits import Waits

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Failures that say "not now", not "never": the same call may succeed later.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


async def until_available(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    waits: Waits,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await call()``, again and again with backoff while ``what`` is unavailable."""
    backoff = FIRST_BACKOFF_S
    failures = 0
    while True:
        try:
            result = await call()
        except UNAVAILABLE as exc:
            failures += 1
            waits.start(what, exc)
            if failures == 1:
                log.warning("%s unavailable (%s); retrying until it answers", what, exc)
            await sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        if failures:
            waits.stop(what)
            log.warning("%s is back after %d failed attempts", what, failures)
        return result
