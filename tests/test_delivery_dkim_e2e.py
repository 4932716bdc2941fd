"""DKIM end to end: ``run_delivery`` with the NUDGE_DKIM_* settings, real Tansu broker,
real Redis, real SMTP server; the bytes the server received verify with dkimpy."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nudge.delivery.dkim import private_key_pem
from nudge.delivery.service import run_delivery
from nudge.embedded import MailCatcher
from nudge.flows.plan import FlowPlan
from nudge.models.message import Message
from nudge.settings import Settings
from nudge.shared_state import SharedState
from tests.test_delivery_e2e import TOPICS, Events, command, produce, wait_until

pytestmark = pytest.mark.e2e


async def test_delivered_email_carries_a_signature_that_verifies(
    make_settings: Callable[..., Settings],
    create_topics: Callable[..., None],
    mail_catcher: Callable[..., MailCatcher],
    tmp_path: Path,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(private_key_pem(key))
    catcher = mail_catcher()
    settings = make_settings(
        smtp_port=catcher.port,
        mail_from="Schöne Dinge <news@shop.example>",
        dkim_domain="shop.example",
        dkim_selector="e2e",
        dkim_key_file=str(key_file),
    )
    create_topics(settings, TOPICS)
    assert settings.redis_url
    redis = aioredis.from_url(settings.redis_url)
    shared = SharedState(redis, settings.redis_namespace)
    await shared.put_profile("c1", {"email": "ann@example.com", "first_name": "Zoë"})
    await shared.set_consent("c1", "email", "subscribed")

    stop = asyncio.Event()
    flows = {"cart-1h": FlowPlan.parse({"id": "cart-1h", "kind": "abandoned_cart"})}
    task = asyncio.create_task(run_delivery(settings, stop=stop, triggers=flows))
    try:
        async with Events(settings, "delivery-events") as events:
            subject = Message(subject="Grüße, {{ customer.first_name }}: your cart is waiting")
            await produce(settings, command(message=subject).to_bytes())
            await wait_until(lambda: len(events.records) == 1, "a delivery event")
            await wait_until(lambda: len(catcher.paths()) == 1, "one email")
            assert events.events()[0].status == "sent"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await redis.aclose()

    received = catcher.paths()[0].read_bytes()
    assert received.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    looked_up: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        looked_up.append(name)
        return record if name == b"e2e._domainkey.shop.example." else None

    assert dkim.verify(received, dnsfunc=dnsfunc)
    assert looked_up == [b"e2e._domainkey.shop.example."]
    # The same bytes with the subject changed in transit do not.
    tampered = received.replace(b"Subject: =?utf-8?", b"Subject: =?UTF-8?")
    assert tampered != received
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)
