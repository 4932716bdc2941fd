"""Client settings every nudge producer shares.

Topics keyed by customer id must agree on the partition of a key, whichever client
produced it: storefronts (often librdkafka), Faust (aiokafka) and our tools. Kafka's
Java default, murmur2, is the one all of them can speak, so it is the contract.
"""

from __future__ import annotations

import logging
from typing import Any

PARTITIONER = "murmur2_random"
#: librdkafka's own log lines go to this logger, at the configured level, not raw to
#: stderr.
KAFKA_LOGGER = "nudge.kafka"


def client_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Any librdkafka client's settings (admin, consumer, producer)."""
    return {"bootstrap.servers": bootstrap, "logger": logging.getLogger(KAFKA_LOGGER), **overrides}


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **client_config(bootstrap),
        "partitioner": PARTITIONER,
        "linger.ms": 5,
        "enable.idempotence": False,
    }
    config.update(overrides)
    return config
