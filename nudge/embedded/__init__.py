"""Real services started in-process or as child processes, for `nudge dev` and tests."""

from nudge.embedded.broker import EmbeddedBroker
from nudge.embedded.mailcatcher import MailCatcher
from nudge.embedded.net import free_port, wait_for_port
from nudge.embedded.redis_server import EmbeddedRedis, ensure_redis

__all__ = [
    "EmbeddedBroker",
    "EmbeddedRedis",
    "MailCatcher",
    "ensure_redis",
    "free_port",
    "wait_for_port",
]
