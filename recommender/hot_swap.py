"""New models replace the serving one while messages keep rendering.

``nudge model publish`` announces a model directory on ``model-updates``. Every
delivery worker tails that topic, loads the model off the event loop, and swaps the
reference in one assignment: a render in flight finishes on the model it started with.
A model that fails its checks is refused, recorded, and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from nudge.recommender.errors import ModelError
from nudge.recommender.model import ItemKNN
from nudge.recommender.popular import Recommender

log = logging.getLogger(__name__)

ANNOUNCEMENT_KEY = b"item-knn"


class SwappableRecommender:
    """A ``Recommender`` that delegates to whichever one was installed last."""

    def __init__(self, initial: Recommender, version: str = "") -> None:
        self.current = initial
        self.version = version

    def install(self, recommender: Recommender, version: str) -> None:
        self.current, self.version = recommender, version

    async def recommend(
        self,
        customer_id: str,
        algorithm: str,
        count: int,
        exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        return await self.current.recommend(
            customer_id, algorithm, count, exclude, history, category, query
        )


def announcement(model_dir: Path, version: str, now_ms: int) -> bytes:
    return orjson.dumps(
        {"model_dir": str(model_dir.resolve()), "version": version, "published_ms": now_ms}
    )


class ModelAnnouncements:
    """Applies ``model-updates`` records to a ``SwappableRecommender``."""

    def __init__(
        self, target: SwappableRecommender, build: Callable[[ItemKNN], Recommender]
    ) -> None:
        self.target = target
        self.build = build
        self.rejected: dict[str, str] = {}

    async def apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            data = orjson.loads(value or b"")
            model_dir = Path(data["model_dir"])
            version = str(data.get("version", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self._refuse(repr(value)[:80], f"unreadable announcement: {exc}")
            return
        if version and version == self.target.version:
            return  # already serving it (a replay of the compacted topic at start-up)
        try:
            model = await asyncio.to_thread(ItemKNN.load, model_dir)
        except (ModelError, OSError) as exc:
            self._refuse(version or str(model_dir), str(exc))
            return
        self.target.install(self.build(model), model.model_version)
        log.info("recommendations now from model %s (%s)", model.model_version, model_dir)

    def _refuse(self, name: str, reason: str) -> None:
        self.rejected[name] = reason
        log.warning("model refused, the previous one keeps serving: %s: %s", name, reason)
