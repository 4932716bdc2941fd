"""A broker lost at run time: the workers stay up and say so on /health."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from nudge.broker_watch import KAFKA, BrokerUnreachable, BrokerWatch, metadata_probe
from nudge.embedded import EmbeddedBroker
from nudge.settings import Settings
from nudge.topics import create_topics
from nudge.waits import Waits
from tests.pipeline_support import NudgeProcess, wait_for


async def test_the_watch_says_once_when_the_broker_goes_and_once_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([None, "refused", "refused", None, None])

    async def probe() -> None:
        answer = next(answers)
        if answer is not None:
            raise BrokerUnreachable(answer)

    waits = Waits()
    watch = BrokerWatch(probe, waits)
    seen = []
    with caplog.at_level(logging.WARNING, logger="nudge.broker_watch"):
        for _ in range(5):
            seen.append((await watch.check(), KAFKA in waits.describe()))
    assert seen == [(True, False), (False, True), (False, True), (True, False), (True, False)]
    assert waits.describe() == {}
    assert [r.getMessage() for r in caplog.records] == [
        "Kafka broker unreachable (refused); the clients keep reconnecting",
        "Kafka broker answers again",
    ]


@pytest.mark.e2e
async def test_the_probe_notices_a_real_broker_gone_and_back(tmp_path: Path) -> None:
    broker = EmbeddedBroker().start()
    port = broker.port
    try:
        probe = metadata_probe(broker.bootstrap, timeout_s=1.0)
        await probe()
        broker.stop()
        with pytest.raises(BrokerUnreachable, match=f"127.0.0.1:{port}"):
            await probe()
        broker = EmbeddedBroker(port=port).start()
        await probe()
    finally:
        broker.stop()


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_a_worker_stays_up_and_names_the_lost_broker_on_health(
    command: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    broker = EmbeddedBroker().start()
    settings = make_settings(kafka_bootstrap=broker.bootstrap)
    port = settings.web_port if command == "worker" else settings.delivery_web_port
    proc = NudgeProcess(command, settings, tmp_path / f"{command}.log").start()
    try:
        wait_for(lambda: _health(port)[0] == 200, f"{command} healthy", timeout=60)
        broker.stop()

        def names_kafka() -> bool:
            status, body = _health(port)
            waiting = body.get("waiting_for")
            return status == 503 and isinstance(waiting, dict) and KAFKA in waiting

        wait_for(names_kafka, f"{command} /health naming kafka", timeout=60)
        assert proc.proc is not None and proc.proc.poll() is None, proc.log()[-2000:]

        broker = EmbeddedBroker(port=broker.port).start()
        create_topics(settings)  # Tansu keeps its log in memory: a restart starts empty

        def kafka_cleared() -> bool:
            waiting = _health(port)[1].get("waiting_for")
            return isinstance(waiting, dict) and KAFKA not in waiting

        wait_for(kafka_cleared, f"{command} /health no longer naming kafka", timeout=60)
        assert proc.proc.poll() is None, proc.log()[-2000:]
    finally:
        proc.kill()
        broker.stop()
