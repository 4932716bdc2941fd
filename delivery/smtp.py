"""The SMTP seam: a ``Transport`` protocol and a pool of reused aiosmtplib connections.

Error mapping is the contract the worker relies on:

* ``TransientError``: the server did not take the message and might later (connection
  refused or dropped before DATA, timeouts before DATA, 4xx replies). Safe to retry.
* ``SmtpRejected`` (``PermanentError``): a 5xx reply; ``hard_bounce`` when it was the
  recipient that was refused.
* ``DeliveryUncertain`` (``PermanentError``): the connection died *after* DATA began,
  so the server may have accepted the message. Retrying could send twice.

The ``on_data`` hook of ``Transport.send`` marks the line between the first two and the
last: the ledger records it, so that after a crash a send that never reached DATA is
known to be safe to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiosmtplib

from nudge.delivery.message import OutgoingMessage
from nudge.errors import PermanentError, TransientError
from nudge.settings import Settings

log = logging.getLogger(__name__)


#: Awaited right before the message body is handed to the server.
DataHook = Callable[[], Awaitable[None]]


class Transport(Protocol):
    async def send(self, message: OutgoingMessage, on_data: DataHook | None = None) -> None:
        """Hand ``message.data`` (finished RFC 5322 bytes) to the envelope's recipients.

        ``on_data``, when given, must be awaited exactly once per message that gets as
        far as DATA, after the envelope was accepted and before DATA is sent: the last
        moment at which the server surely does not have the message. If it raises, the
        transport must not send the body, and lets the exception through.
        """
        ...

    async def close(self) -> None: ...


class SmtpTransient(TransientError):
    def __init__(self, detail: str, code: int | None = None) -> None:
        self.code = code
        self.reason = f"smtp_{code}" if code else "smtp_unavailable"
        super().__init__(detail)


class SmtpRejected(PermanentError):
    def __init__(self, detail: str, code: int, *, hard_bounce: bool = False) -> None:
        self.code = code
        self.hard_bounce = hard_bounce
        self.reason = f"smtp_{code}"
        super().__init__(detail)


class _Dropped(Exception):
    """The connection closed before DATA: nothing was sent, so reconnecting is safe."""


class DeliveryUncertain(PermanentError):
    reason = "interrupted_uncertain"


def _by_code(exc: aiosmtplib.SMTPResponseException, *, recipient: bool = False) -> Exception:
    detail = f"{type(exc).__name__}: {exc.code} {exc.message}"
    if 400 <= exc.code < 500:
        return SmtpTransient(detail, exc.code)
    # Anything else odd (no 2xx, no 4xx) is treated as a refusal: retrying blindly
    # against a server that answers nonsense does not help.
    return SmtpRejected(detail, exc.code, hard_bounce=recipient and exc.code >= 500)


class SmtpPool:
    """Up to ``smtp_pool_size`` authenticated connections, reused across messages.

    The pool size is also the cap on concurrent SMTP transactions, which is the
    backpressure point: workers wait here instead of opening more connections.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        conn = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            use_tls=False,
            start_tls=s.smtp_starttls,
        )
        try:
            await conn.connect()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                await conn.login(s.smtp_username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            conn.close()
            # Bad credentials are our configuration, not this message's fault: retry
            # (and alert on the failure metric) rather than burn every command.
            raise SmtpTransient(f"authentication failed: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            conn.close()
            raise SmtpTransient(f"connect: {exc.code} {exc.message}", exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            conn.close()
            raise SmtpTransient(f"connect: {type(exc).__name__}: {exc}") from exc
        return conn

    async def probe(self) -> str | None:
        """Open one connection (kept for the first message); what went wrong, if any.

        A worker starting while its SMTP server is away stays up: messages wait and
        are retried. The probe only lets it say so at once, naming the settings.
        """
        async with self._slots:
            try:
                conn = await self._connect()
            except SmtpTransient as exc:
                return str(exc)
            self._idle.append(conn)
        return None

    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn, True
        return await self._connect(), False

    async def send(self, message: OutgoingMessage, on_data: DataHook | None = None) -> None:
        if self._closed:
            raise SmtpTransient("transport closed")
        # The bytes go out as built: no parsing or flattening here (see delivery.message).
        sender, recipients, data = message.sender, list(message.recipients), message.data
        async with self._slots:
            conn, reused = await self._checkout()
            try:
                try:
                    await self._transaction(conn, sender, recipients, data, on_data)
                except _Dropped:
                    if not reused:
                        raise
                    # Servers drop idle connections, which shows only on first use and
                    # before anything was sent, so one fresh connection is safe.
                    log.debug("pooled SMTP connection was dropped; reconnecting")
                    conn.close()
                    conn = await self._connect()
                    await self._transaction(conn, sender, recipients, data, on_data)
            except _Dropped as exc:
                conn.close()
                raise SmtpTransient(f"connection dropped: {exc}") from exc
            except BaseException:
                # After any failure the session state is unknown: never pool it again.
                conn.close()
                raise
            if self._closed:
                await _quit(conn)
            else:
                self._idle.append(conn)

    async def _transaction(
        self,
        conn: aiosmtplib.SMTP,
        sender: str,
        recipients: list[str],
        data: bytes,
        on_data: DataHook | None,
    ) -> None:
        try:
            await conn.mail(sender)
            for rcpt in recipients:
                try:
                    await conn.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    raise _by_code(exc, recipient=True) from exc
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _Dropped(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpTransient(f"{type(exc).__name__}: {exc}") from exc
        if on_data is not None:
            # Outside the SMTP error mapping: whatever it raises (the claim was lost,
            # Redis is down) is the caller's, and the connection is closed unused.
            await on_data()
        try:
            await conn.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            # A reply to the data is a definite answer: the server did not take it.
            raise _by_code(exc) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryUncertain(
                f"interrupted_uncertain: connection lost during DATA: {type(exc).__name__}"
            ) from exc

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(conn) for conn in idle))


async def _quit(conn: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await conn.quit()
    conn.close()
