"""A delivery worker says at start when its SMTP server is away, and stays up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from nudge.delivery.service import run_delivery
from nudge.delivery.smtp import SmtpPool
from nudge.embedded import MailCatcher, free_port
from nudge.settings import Settings

pytestmark = pytest.mark.e2e


async def test_the_probe_names_what_failed_and_keeps_a_good_connection(
    mail_catcher: Callable[..., MailCatcher],
) -> None:
    away = SmtpPool(Settings(smtp_port=free_port(), smtp_timeout_s=2))
    problem = await away.probe()
    assert problem is not None and "connect" in problem
    await away.close()

    catcher = mail_catcher()
    pool = SmtpPool(Settings(smtp_port=catcher.port))
    assert await pool.probe() is None
    assert len(pool._idle) == 1, "the probed connection serves the first message"
    await pool.close()


async def test_delivery_starts_without_smtp_and_warns_naming_the_settings(
    make_settings: Callable[..., Settings],
    create_topics: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    settings = make_settings(smtp_port=port, smtp_timeout_s=2)
    create_topics(settings, ["send-commands", "delivery-events", "dead-letter", "model-updates"])
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="nudge.delivery.service"):
        task = asyncio.create_task(run_delivery(settings, stop=stop, triggers={}))
        for _ in range(200):
            if any("NUDGE_SMTP_HOST" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert not task.done(), "still running"
        stop.set()
        await asyncio.wait_for(task, 30)
    [warning] = [r.getMessage() for r in caplog.records if "NUDGE_SMTP_HOST" in r.getMessage()]
    assert f"NUDGE_SMTP_PORT={port}" in warning and "retried" in warning
