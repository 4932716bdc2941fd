"""An imported feed lands on the broker and the stream worker's catalogue serves it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from nudge.imports.catalog import import_catalog
from nudge.settings import Settings
from nudge.shared_state import SharedState
from tests.pipeline_support import NudgeProcess, wait_for

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parent / "fixtures"


def products(settings: Settings, ids: list[str]) -> dict[str, dict]:
    async def get() -> dict[str, dict]:
        redis = Redis.from_url(settings.redis_url or "")
        try:
            return await SharedState(redis, settings.redis_namespace).get_products(ids)
        finally:
            await redis.aclose()

    return asyncio.run(get())


def test_worker_catalogue_sees_imported_products(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(data_dir=tmp_path / "data")
    summary = import_catalog(
        settings, str(FIXTURES / "shop.yml.xml"), rejects=tmp_path / "r.jsonl", progress=False
    )
    assert summary.changed == 3
    worker = NudgeProcess("worker", settings, tmp_path / "worker.log").start()
    try:
        found = wait_for(
            lambda: (p := products(settings, ["p-1", "p-2", "p-6"])) and len(p) == 3 and p,
            "imported products in the worker's catalogue",
        )
    finally:
        worker.stop()
    assert found["p-1"]["title"] == 'Chef\'s knife "Pro" 20 cm'
    assert found["p-1"]["category_ids"] == ["1", "10", "101"]
    assert found["p-2"]["available"] is False
