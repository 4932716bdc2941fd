"""A real SMTP server (aiosmtpd) that writes each accepted message to a folder as .eml."""

from __future__ import annotations

import itertools
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from nudge.embedded.net import free_port


class _FolderHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.accepted_at: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode()
        with self._lock:
            n = next(self._seq)
            self.accepted_at.append(time.time())
        name = f"{time.time_ns()}-{n:06d}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.rename(self.folder / name)
        return "250 Message accepted for delivery"


class MailCatcher:
    """Runs in its own thread; ``messages()`` reads back what arrived."""

    def __init__(self, folder: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.handler = _FolderHandler(self.folder)
        self._controller: Controller | None = None

    def start(self) -> MailCatcher:
        self._controller = Controller(
            self.handler, hostname=self.host, port=self.port, data_size_limit=10 * 1024 * 1024
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        result: list[EmailMessage] = []
        for path in self.paths():
            msg: Any = message_from_bytes(path.read_bytes(), policy=policy.default)
            result.append(msg)
        return result

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
