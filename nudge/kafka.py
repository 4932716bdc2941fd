"""Client settings every nudge producer shares.

Topics keyed by customer id must agree on the partition of a key, whichever client
produced it: storefronts (often librdkafka), Faust (aiokafka) and our tools. Kafka's
Java default, murmur2, is the one all of them can speak, so it is the contract.
"""

from __future__ import annotations

from typing import Any

PARTITIONER = "murmur2_random"


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "partitioner": PARTITIONER,
        "linger.ms": 5,
        "enable.idempotence": False,
    }
    config.update(overrides)
    return config
