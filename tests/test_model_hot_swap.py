"""Publishing a model swaps it in under load; a bad one is refused and the old one serves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nudge.cli import main
from nudge.recommender.hot_swap import ModelAnnouncements, SwappableRecommender, announcement
from nudge.recommender.model import ItemKNN
from nudge.recommender.service import ModelRecommender
from nudge.recommender.training import TrainParams, interactions_from_records
from nudge.settings import Settings
from nudge.topic_tail import TopicTail
from nudge.topics import create_topics


def train(model_dir: Path, partner: str) -> str:
    """A model in which whoever looks at a boot also looks at ``partner``."""
    records = []
    for shopper in range(30):
        for product in ("boot", partner) if shopper % 2 else ("hat", "glove"):
            records.append((f"s{shopper}", product, 1.0, 1_700_000_000.0))
    model = ItemKNN.fit(interactions_from_records(records), TrainParams(k=5, shrink=0.0))
    model.save(model_dir)
    return model.model_version


class Initial:
    async def recommend(
        self, customer_id: str, algorithm: str, count: int, exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        return [{"product_id": "popular"}]


def build(model: ItemKNN) -> ModelRecommender:
    return ModelRecommender(model)


async def first(recommender: SwappableRecommender) -> str:
    recs = await recommender.recommend("c1", "personal", 1, [], ["boot"])
    return str(recs[0]["product_id"])


async def test_swaps_under_load_and_refuses_a_corrupt_model(tmp_path: Path) -> None:
    laces, socks = tmp_path / "laces", tmp_path / "socks"
    laces_version = train(laces, "laces")
    train(socks, "socks")
    target = SwappableRecommender(Initial())
    models = ModelAnnouncements(target, build)
    seen: list[str] = []
    stop = asyncio.Event()

    async def render_continuously() -> None:
        while not stop.is_set():
            seen.append(await first(target))  # any exception here fails the test
            # A breath between renders: eight loops that never sleep starve the thread
            # that loads the model of the GIL, and the test takes seconds to minutes.
            await asyncio.sleep(0.001)

    renders = [asyncio.create_task(render_continuously()) for _ in range(8)]
    await asyncio.sleep(0.01)
    await models.apply(b"item-knn", announcement(laces, laces_version, 1))
    assert await first(target) == "laces" and target.version == laces_version
    array = sorted(socks.glob("*.npy"))[-1]
    data = bytearray(array.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte: the checksum must catch it
    array.write_bytes(bytes(data))
    await models.apply(b"item-knn", announcement(socks, "broken", 2))
    assert await first(target) == "laces", "a refused model leaves the old one serving"
    assert "broken" in models.rejected
    fresh = tmp_path / "socks2"
    socks2_version = train(fresh, "socks")
    await models.apply(b"item-knn", announcement(fresh, socks2_version, 3))
    assert await first(target) == "socks"
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*renders)
    assert set(seen) <= {"popular", "laces", "socks"} and "laces" in seen


async def test_nudge_model_publish_reaches_a_running_worker(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    create_topics(settings)
    target = SwappableRecommender(Initial())
    models = ModelAnnouncements(target, build)
    tail = TopicTail(settings.kafka_bootstrap, settings.topic("model-updates"), models.apply)
    stop = asyncio.Event()
    task = asyncio.create_task(tail.run(stop))
    try:
        version = train(tmp_path / "m1", "laces")
        for name, value in settings.as_env().items():
            monkeypatch.setenv(name, value)
        runner = CliRunner()
        refused = runner.invoke(main, ["model", "publish", str(tmp_path)])
        assert refused.exit_code != 0 and "refused" in refused.output
        done = runner.invoke(main, ["model", "publish", str(tmp_path / "m1")])
        assert done.exit_code == 0, done.output
        for _ in range(200):
            if target.version == version:
                break
            await asyncio.sleep(0.1)
        assert await first(target) == "laces"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
