"""The changelog codec for ``SellerState``: positional JSON, versioned like the other
tables' codecs (a new field goes at the end; older records decode with its default)."""

from __future__ import annotations

from dataclasses import asdict

import orjson

from nudge.models.commands import SendCommand
from nudge.models.sellers import SellerProfile, SellerState

CODEC_NAME = "nudge-seller"
VERSION = 1


def seller_to_bytes(state: SellerState) -> bytes:
    profile = state.profile
    return orjson.dumps(
        [
            VERSION,
            state.seller_id,
            state.partition,
            None if profile is None else asdict(profile),
            state.sales,
            list(state.recent_orders),
            [orjson.Fragment(c.to_bytes()) for c in state.held],
        ]
    )


def seller_from_bytes(raw: bytes) -> SellerState:
    data = orjson.loads(raw)
    if not isinstance(data, list) or not data or data[0] != VERSION:
        raise ValueError(f"unknown seller-state format: {raw[:40]!r}")
    _, seller_id, partition, profile, sales, recent, held = data[:7]
    return SellerState(
        seller_id,
        partition,
        None if profile is None else SellerProfile(**profile),
        sales,
        tuple(recent),
        tuple(SendCommand.from_bytes(orjson.dumps(c)) for c in held),
    )
