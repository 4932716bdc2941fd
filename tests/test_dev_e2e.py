"""``nudge dev`` on this machine: SIGTERM stops every child it started, and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.pipeline_support import wait_for

pytestmark = pytest.mark.e2e


def test_sigterm_stops_dev_and_every_child(redis_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(NUDGE_DATA_DIR=str(tmp_path / "data"), NUDGE_REDIS_URL=redis_url,
               NUDGE_REDIS_NAMESPACE=f"dev-{os.getpid()}")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "nudge", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Ctrl-C stops everything" in line for line in lines), "dev up", 90)
        children = _children(proc.pid)
        assert len(children) >= 4, "a broker, a stream and a delivery worker, inbound"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    output = "".join(lines)
    stopping = "stopping stream worker, delivery worker, inbound server, mail catcher, broker..."
    assert stopping in output
    assert output.rstrip().endswith("stopped."), output[-2000:]
    deadline = time.monotonic() + 10
    while (left := [pid for pid in children if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], "no child outlives nudge dev"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
