"""Stopping a child process: politely first, by force after a grace period."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], grace_s: float, *, terminate: bool = True) -> None:
    """SIGTERM (unless ``terminate`` is false: it is exiting on its own), SIGKILL if it
    has not exited after ``grace_s``; the process is always reaped."""
    if terminate and proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
