"""The importer's side of the feed reader process (see ``feed_reader``).

The pipe is the only buffer between the two: the reader blocks on a full pipe while
the importer works through the batch before, so at most about two batches are in
flight whatever the feed's size. The reader is always stopped and reaped on the way
out, on errors and Ctrl-C too, and a reader that dies says so as an ImportFailure.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

import nudge.imports as imports
from nudge.imports.errors import FeedError, ImportFailure
from nudge.imports.frames import BATCH, DONE, FAILED, Batch, read_frame
from nudge.processes import stop_process

STOP_GRACE_S = 5.0
READER_MODULE = "nudge.imports.feed_reader"


class FeedReaderProcess:
    """``with FeedReaderProcess(path, kind) as reader: for batch in reader: ...``"""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._done = False

    def start(self) -> FeedReaderProcess:
        # The package's own parent on the path: the reader imports the same code as us,
        # whatever the current directory or install mode.
        root = str(Path(imports.__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
        }
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", READER_MODULE, str(self.path), self.kind],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __iter__(self) -> Iterator[Batch]:
        assert self._proc is not None and self._proc.stdout is not None, "start() first"
        while True:
            frame = read_frame(self._proc.stdout)
            if frame is None:
                raise self._died()
            kind, payload = frame
            if kind == BATCH:
                yield Batch.load(payload)
            elif kind == FAILED:
                raise FeedError(payload.decode(errors="replace"))
            elif kind == DONE:
                self._done = True
                return
            else:
                raise ImportFailure(f"feed reader: unexpected frame {kind!r}")

    def _died(self) -> ImportFailure:
        assert self._proc is not None
        code = self._proc.wait()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        detail = self._last_error_line()
        return ImportFailure(f"the feed reader process {how}{': ' + detail if detail else ''}")

    def _last_error_line(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 4096))
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def stop(self) -> None:
        """Stops the reader if still running, and reaps it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            # after DONE the reader is on its way out: let it finish
            stop_process(proc, STOP_GRACE_S, terminate=not self._done)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FeedReaderProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
