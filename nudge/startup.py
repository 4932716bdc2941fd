"""What a production command checks before it starts.

``nudge worker`` and ``nudge deliver`` start no services of their own: they need the
operator's Kafka, with nudge's topics created, and the operator's Redis, which both
share (consent written by one must be seen by the other). Each failed check is a
``StartupError`` whose message is one line naming the setting to look at.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from pydantic import ValidationError

from nudge.errors import ConfigError, NudgeError
from nudge.kafka import KAFKA_LOGGER, client_config
from nudge.settings import Settings

T = TypeVar("T")
_RETRY_EVERY_S = 1.0


class StartupError(NudgeError):
    """A command cannot start; the message names the setting to fix."""


def load_settings() -> Settings:
    """The settings from the environment; every invalid ``NUDGE_*`` named on one line."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "NUDGE_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise StartupError("invalid settings: " + "; ".join(problems)) from None


def require_dkim(settings: Settings) -> None:
    """The ``NUDGE_DKIM_*`` settings make a signer, or are all unset."""
    from nudge.delivery.dkim import DkimSigner

    try:
        DkimSigner.from_settings(settings)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


def require_redis(settings: Settings) -> str:
    """The Redis URL, once Redis answers a PING; retried for ``connect_timeout_s``."""
    url = settings.redis_url
    if not url:
        raise StartupError(
            "NUDGE_REDIS_URL is not set: the stream and delivery workers share one Redis "
            "(consent, catalogue, claims); `nudge dev` starts one for development"
        )
    import redis

    def ping() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()

    _retry(ping, settings.connect_timeout_s, lambda e: _redis_failure(url, settings, e))
    return url


def _redis_failure(url: str, settings: Settings, exc: Exception) -> StartupError:
    return StartupError(
        f"NUDGE_REDIS_URL={_without_password(url)}: Redis did not answer within "
        f"{settings.connect_timeout_s:g} s (NUDGE_CONNECT_TIMEOUT_S): {exc}"
    )


def require_broker(settings: Settings) -> set[str]:
    """The topics of the broker at ``kafka_bootstrap``, once it answers; retried for
    ``connect_timeout_s``."""
    from confluent_kafka.admin import AdminClient

    failures = _LastError()
    logger = logging.getLogger(KAFKA_LOGGER)
    logger.addHandler(failures)
    # Retries are summed up in one line; their every complaint is for DEBUG only.
    propagate, logger.propagate = logger.propagate, logger.isEnabledFor(logging.DEBUG)
    try:
        admin = AdminClient(client_config(settings.kafka_bootstrap))
        deadline = time.monotonic() + settings.connect_timeout_s
        while True:
            try:
                return set(admin.list_topics(timeout=_RETRY_EVERY_S * 2).topics)
            except Exception as exc:  # KafkaException: the broker did not answer
                if time.monotonic() >= deadline:
                    reason = failures.last or _kafka_reason(exc)
                    raise StartupError(
                        f"NUDGE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: no Kafka broker "
                        f"answered within {settings.connect_timeout_s:g} s "
                        f"(NUDGE_CONNECT_TIMEOUT_S): {reason}"
                    ) from None
                time.sleep(_RETRY_EVERY_S)
    finally:
        logger.removeHandler(failures)
        logger.propagate = propagate


def require_topics(settings: Settings, names: Iterable[str]) -> None:
    """The broker answers and holds every topic in ``names``."""
    existing = require_broker(settings)
    missing = [name for name in names if name not in existing]
    if missing:
        raise StartupError(
            f"topics missing on {settings.kafka_bootstrap}: {', '.join(missing)}; create them "
            f"with `nudge topics create` (NUDGE_TOPIC_PREFIX={settings.topic_prefix!r})"
        )


def require_free_port(host: str, port: int, setting: str) -> None:
    """Nothing else listens on ``host:port``, the port of ``setting``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(
                f"{setting}={port}: cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another nudge running?)"
            ) from None


class _LastError(logging.Handler):
    """Keeps librdkafka's latest complaint, for the one line that reports it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


def _retry(call: Callable[[], T], timeout_s: float, failure: Callable[[Exception], Exception]) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise failure(exc) from None
            time.sleep(_RETRY_EVERY_S)


def _kafka_reason(exc: Exception) -> str:
    error = exc.args[0] if exc.args else exc
    return str(error.str() if hasattr(error, "str") else error)


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
