"""Production commands start no services and explain, in one line, what is missing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from nudge.cli import main
from nudge.embedded import free_port
from nudge.settings import Settings
from nudge.startup import (
    StartupError,
    load_settings,
    require_broker,
    require_free_port,
    require_redis,
    require_topics,
)
from nudge.topics import TOPICS, create_topics
from tests.pipeline_support import NudgeProcess, wait_for


def test_invalid_settings_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_PARTITIONS", "four")
    monkeypatch.setenv("NUDGE_SEND_RETRY_FOR", "P7")
    with pytest.raises(StartupError) as refused:
        load_settings()
    message = str(refused.value)
    assert "NUDGE_PARTITIONS='four'" in message and "NUDGE_SEND_RETRY_FOR='P7'" in message
    assert "\n" not in message


def test_without_a_redis_url_nothing_starts() -> None:
    with pytest.raises(StartupError, match=r"^NUDGE_REDIS_URL is not set"):
        require_redis(Settings(redis_url=None))


def test_an_unreachable_redis_is_named_without_its_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(StartupError) as refused:
        require_redis(Settings(redis_url=url, connect_timeout_s=1))
    assert time.monotonic() - started >= 1, "retried for NUDGE_CONNECT_TIMEOUT_S"
    message = str(refused.value)
    assert message.startswith("NUDGE_REDIS_URL=redis://:***@") and "hunter2" not in message
    assert "NUDGE_CONNECT_TIMEOUT_S" in message


def test_a_reachable_redis_passes(redis_url: str) -> None:
    assert require_redis(Settings(redis_url=redis_url)) == redis_url


def test_an_unreachable_broker_is_named() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(StartupError) as refused:
        require_broker(Settings(kafka_bootstrap=bootstrap, connect_timeout_s=1))
    assert str(refused.value).startswith(f"NUDGE_KAFKA_BOOTSTRAP={bootstrap}: no Kafka broker")


@pytest.mark.e2e
def test_missing_topics_are_named_with_the_command_that_creates_them(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    names = [settings.topic(spec.name) for spec in TOPICS]
    with pytest.raises(StartupError) as refused:
        require_topics(settings, names)
    assert settings.topic("clickstream") in str(refused.value)
    assert "nudge topics create" in str(refused.value)
    create_topics(settings)
    require_topics(settings, names)


def test_a_busy_port_names_its_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=rf"^NUDGE_WEB_PORT={port}: cannot listen"):
            require_free_port("127.0.0.1", port, "NUDGE_WEB_PORT")
    require_free_port("127.0.0.1", port, "NUDGE_WEB_PORT")  # free again


@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_the_workers_refuse_to_start_without_redis_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NUDGE_REDIS_URL", raising=False)
    monkeypatch.setenv("NUDGE_WEB_PORT", str(free_port()))
    monkeypatch.setenv("NUDGE_DELIVERY_WEB_PORT", str(free_port()))
    result = CliRunner().invoke(main, [command])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: NUDGE_REDIS_URL is not set"), lines


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_sigterm_stops_a_worker_within_the_shutdown_timeout(
    command: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(shutdown_timeout_s=10)
    proc = NudgeProcess(command, settings, tmp_path / f"{command}.log").start()
    port = settings.web_port if command == "worker" else settings.delivery_web_port
    try:
        # Running: a stop during start-up may take the deadline's way out (exit 3).
        wait_for(lambda: _healthy(port), f"{command} healthy", timeout=60)
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        proc.kill()
    assert code == 0, proc.log()[-2000:]
    assert took < settings.shutdown_timeout_s, f"stopped after {took:.1f} s"


def test_a_stuck_shutdown_is_cut_short_with_one_line(tmp_path: Path) -> None:
    # A process whose polite stop never ends: the deadline ends it.
    code = (
        "import signal, time\n"
        "from nudge.shutdown import ShutdownDeadline\n"
        "deadline = ShutdownDeadline(0.5, 'nudge worker')\n"
        "signal.signal(signal.SIGTERM, lambda *a: deadline.arm())\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert err.decode().strip() == (
        "nudge worker did not stop within 0.5 s (NUDGE_SHUTDOWN_TIMEOUT_S): exiting; "
        "uncommitted records will be consumed again"
    )


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
