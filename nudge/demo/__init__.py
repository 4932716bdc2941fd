"""A synthetic storefront for `nudge dev`: a catalogue, customers and shoppers that leave."""

from __future__ import annotations

from pathlib import Path

from nudge.demo.storefront import (
    ProducerSend,
    demo_catalog,
    demo_customers,
    play,
    publish_reference_data,
)
from nudge.demo.vocabulary import DEMO_CATEGORIES

#: Short-delay triggers applied by `nudge dev`.
DEMO_TRIGGERS_PATH = Path(__file__).with_name("triggers.yaml")
#: Realistic delays: an example to copy for production.
PRODUCTION_TRIGGERS_PATH = Path(__file__).with_name("production-triggers.yaml")

__all__ = [
    "DEMO_CATEGORIES",
    "DEMO_TRIGGERS_PATH",
    "PRODUCTION_TRIGGERS_PATH",
    "ProducerSend",
    "demo_catalog",
    "demo_customers",
    "play",
    "publish_reference_data",
]
