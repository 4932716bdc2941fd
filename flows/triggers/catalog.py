"""``price_drop`` and ``back_in_stock``: a catalogue change, told to the customers who
subscribed to the product, or viewed or carted it within ``lookback``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flows.fields import Duration, Strict

Audience = Literal["subscribed", "viewed", "carted"]
EVERYONE: tuple[Audience, ...] = ("subscribed", "viewed", "carted")


class BackInStockSpec(Strict):
    audience: list[Audience] = Field(default_factory=lambda: list(EVERYONE), min_length=1)
    #: how far back a view or a cart counts
    lookback: Duration = 30 * 86_400_000


class PriceDropSpec(BackInStockSpec):
    #: smaller drops are not worth a message
    min_drop_percent: float | None = Field(None, gt=0, lt=100)


class PriceDropTrigger(Strict):
    price_drop: PriceDropSpec


class BackInStockTrigger(Strict):
    back_in_stock: BackInStockSpec
