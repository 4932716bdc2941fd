"""The changelog codec for ``ProductAudience``: positional JSON, versioned like the
customer-state codec (a new field goes at the end; older records decode with its
default)."""

from __future__ import annotations

import orjson

from nudge.flows.triggers.catalog import Member, ProductAudience

CODEC_NAME = "nudge-audience"
VERSION = 1


def audience_to_bytes(audience: ProductAudience) -> bytes:
    return orjson.dumps(
        [
            VERSION,
            audience.product_id,
            audience.partition,
            [[c, m.viewed_ms, m.carted_ms, m.subscribed] for c, m in audience.members.items()],
        ]
    )


def audience_from_bytes(raw: bytes) -> ProductAudience:
    data = orjson.loads(raw)
    if not isinstance(data, list) or not data or data[0] != VERSION:
        raise ValueError(f"unknown product-audience format: {raw[:40]!r}")
    _, product_id, partition, members = data[:4]
    return ProductAudience(product_id, partition, {m[0]: Member(*m[1:4]) for m in members})
