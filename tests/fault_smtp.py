"""A misbehaving SMTP server for fault tests: MailCatcher's handler behind one that stalls.

``Stalling`` wraps ``MailCatcher.handler`` (pass it as ``wrap``) and makes the server slow
at one of two moments of the SMTP transaction:

* at RCPT, *before* DATA: a client that dies here sent nothing, so resending is safe
  and a correct client loses nothing and duplicates nothing;
* inside DATA, after the whole message arrived and before the reply: the client cannot
  know whether the server keeps it. Per message, the server either stores the message
  before stalling (it is delivered even if the client vanishes: a resend duplicates it)
  or only when it replies (a client that vanished loses it: only a resend saves it).

Counters are read by the test thread while the server's loop thread updates them; each
is a plain int under the GIL, which is all a poll needs.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class StallCounts:
    rcpt_in_flight: int = 0
    data_in_flight: int = 0
    accepted: int = 0
    cut_at_rcpt: int = 0
    cut_in_data_stored: int = 0
    cut_in_data_unstored: int = 0

    def describe(self) -> str:
        return (
            f"SMTP server: {self.accepted} accepted; client gone while stalled at RCPT: "
            f"{self.cut_at_rcpt}; inside DATA: {self.cut_in_data_stored} already stored, "
            f"{self.cut_in_data_unstored} not stored"
        )


class Stalling:
    def __init__(
        self,
        inner: Any,
        *,
        rcpt_stall_s: tuple[float, float] | None = None,
        data_stall_s: tuple[float, float] | None = None,
        store_first_share: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.inner = inner
        self.rcpt_stall_s = rcpt_stall_s
        self.data_stall_s = data_stall_s
        self.store_first_share = store_first_share
        self.rng = random.Random(seed)
        self.counts = StallCounts()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_stall_s is not None:
            self.counts.rcpt_in_flight += 1
            try:
                await asyncio.sleep(self.rng.uniform(*self.rcpt_stall_s))
            except asyncio.CancelledError:
                self.counts.cut_at_rcpt += 1
                raise
            finally:
                self.counts.rcpt_in_flight -= 1
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_stall_s is None:
            return await self._store(server, session, envelope)
        store_first = self.rng.random() < self.store_first_share
        result = await self._store(server, session, envelope) if store_first else ""
        self.counts.data_in_flight += 1
        try:
            await asyncio.sleep(self.rng.uniform(*self.data_stall_s))
        except asyncio.CancelledError:
            if store_first:
                self.counts.cut_in_data_stored += 1
            else:
                self.counts.cut_in_data_unstored += 1
            raise
        finally:
            self.counts.data_in_flight -= 1
        return result if store_first else await self._store(server, session, envelope)

    async def _store(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        result: str = await self.inner.handle_DATA(server, session, envelope)
        self.counts.accepted += 1
        return result
