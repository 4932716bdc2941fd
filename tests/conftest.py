"""Shared fixtures: real broker, Redis and SMTP server; per-test settings that never collide."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from confluent_kafka.admin import AdminClient, NewTopic

from nudge.embedded import EmbeddedBroker, MailCatcher, ensure_redis, free_port
from nudge.settings import Settings
from tests.fault_support import FaultEnv, env_for_tests


def start_broker(log_dir: Path) -> EmbeddedBroker:
    """A fresh Tansu broker; the ``broker`` fixture shares one per session."""
    return EmbeddedBroker(log_path=log_dir / "tansu.log").start()


class ExternalBroker:
    """A Kafka cluster someone else runs: the same suite, against real Kafka."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | ExternalBroker]:
    """The embedded Tansu broker, or ``NUDGE_TEST_KAFKA_BOOTSTRAP`` when set.

    Every test uses a fresh topic prefix, so a shared cluster is safe to point at.
    """
    external = os.environ.get("NUDGE_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    server = start_broker(tmp_path_factory.mktemp("broker"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """NUDGE_TEST_REDIS_URL, else 127.0.0.1:6379 when listening, else an embedded one."""
    url, server = ensure_redis(os.environ.get("NUDGE_TEST_REDIS_URL"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def mail_catcher(tmp_path: Path) -> Iterator[Callable[..., MailCatcher]]:
    """Factory: ``mail_catcher(wrap=None)`` starts an aiosmtpd server writing .eml files.

    ``wrap(handler) -> handler`` lets a test put a misbehaving handler in front of the
    real one (e.g. answer 451 to the first message).
    """
    started: list[MailCatcher] = []

    def make(wrap: Callable[[Any], Any] | None = None) -> MailCatcher:
        catcher = MailCatcher(tmp_path / f"mail-{len(started)}")
        if wrap is not None:
            catcher.handler = wrap(catcher.handler)
        started.append(catcher.start())
        return catcher

    yield make
    for catcher in started:
        catcher.stop()


@pytest.fixture
def make_settings(
    broker: EmbeddedBroker | ExternalBroker, redis_url: str
) -> Iterator[Callable[..., Settings]]:
    """Factory: Settings on the test broker and Redis with a unique topic prefix,
    Redis namespace and app id, so tests (and their consumer groups) never collide.
    The namespace's keys are deleted afterwards."""
    namespaces: list[str] = []

    def make(**overrides: Any) -> Settings:
        uid = uuid.uuid4().hex[:10]
        values: dict[str, Any] = {
            "kafka_bootstrap": broker.bootstrap,
            "redis_url": redis_url,
            "topic_prefix": f"t{uid}.",
            "redis_namespace": f"test-{uid}",
            "app_id": f"nudge-{uid}",
            "web_port": free_port(),
            "delivery_web_port": free_port(),
            "partitions": 2,
            "send_backoff_s": 0.05,
        }
        values.update(overrides)
        settings = Settings(**values)
        namespaces.append(settings.redis_namespace)
        return settings

    yield make
    client = sync_redis.Redis.from_url(redis_url)
    for ns in namespaces:
        keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture
def create_topics(
    broker: EmbeddedBroker | ExternalBroker,
) -> Callable[[Settings, Iterable[str]], None]:
    """Create ``settings.topic(name)`` for each name with ``settings.partitions``.

    Topics must exist before anyone produces: Tansu would auto-create them with a
    partition count of its own choosing.
    """

    def create(settings: Settings, names: Iterable[str]) -> None:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topics = [
            NewTopic(settings.topic(n), settings.partitions, settings.replication_factor)
            for n in names
        ]
        for future in admin.create_topics(topics).values():
            future.result(timeout=30)

    return create


@pytest.fixture
def fault_env(
    broker: EmbeddedBroker | ExternalBroker,
    redis_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> FaultEnv:
    """Where the fault-injection scenarios run (see ``tests/fault_support.py``)."""
    return env_for_tests(broker, redis_url, make_settings, tmp_path)
