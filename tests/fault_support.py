"""The fault-injection harness: a rig of real services and real `nudge` processes.

A ``FaultEnv`` says where scenarios run (broker, Redis, scratch folder, a factory of
settings with fresh topic prefixes); pytest builds one from the shared fixtures and
``benchmarks/fault_soak.py`` from its own environment, so both run the same scenarios.
A ``Rig`` is one isolated pipeline: an aiosmtpd server (optionally misbehaving), the
topics, one abandoned-cart trigger, and any number of stream and delivery workers that
the scenario starts, kills with SIGKILL and restarts. It keeps a timeline of what it did
and notices a process that exits without having been killed.
"""

from __future__ import annotations

import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nudge.cli.triggers import publish_definitions
from nudge.embedded import MailCatcher, free_port
from nudge.settings import Settings
from nudge.topics import create_topics
from tests.pipeline_support import NudgeProcess, wait_for

#: Every scenario: one email per abandoned cart, after ``delay`` seconds, no follow-up.
DEFAULT_DELAY_S = 2.0


def fault_seed() -> int:
    """``NUDGE_FAULT_SEED`` to replay a run's random kill moments, else a fresh seed."""
    raw = os.environ.get("NUDGE_FAULT_SEED")
    return int(raw) if raw else random.randrange(1 << 30)


@dataclass
class FaultEnv:
    bootstrap: str
    redis_url: str
    scratch: Path
    #: ``make(**overrides) -> Settings`` with a fresh topic prefix, app id, namespace, ports
    make: Callable[..., Settings]
    seed: int
    external_kafka: bool = False


class FaultProcess(NudgeProcess):
    """A `nudge` child that knows whether it is meant to be down (killed or stopped)."""

    def __init__(self, command: str, settings: Settings, log_path: Path, name: str) -> None:
        super().__init__(command, settings, log_path)
        self.name = name
        self.meant_down = True
        self.starts = 0
        self.started_at = 0.0

    def start(self) -> FaultProcess:
        self.meant_down = False
        self.starts += 1
        self.started_at = time.monotonic()
        super().start()
        return self

    def kill(self) -> None:
        self.meant_down = True
        super().kill()

    def stop(self) -> None:
        self.meant_down = True
        super().stop()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def port(self) -> int:
        s = self.settings
        return s.web_port if self.command == "worker" else s.delivery_web_port


class Rig:
    def __init__(
        self,
        env: FaultEnv,
        name: str,
        *,
        delay_s: float = DEFAULT_DELAY_S,
        wrap: Callable[[Any], Any] | None = None,
        **overrides: Any,
    ) -> None:
        self.env = env
        self.name = name
        self.delay_s = delay_s
        self.dir = env.scratch / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.catcher = MailCatcher(self.dir / "mail")
        if wrap is not None:
            self.catcher.handler = wrap(self.catcher.handler)
        self.catcher.start()
        try:
            settings = env.make(smtp_port=self.catcher.port, **overrides)
            self.settings = settings.model_copy(
                update={
                    "public_url": f"http://127.0.0.1:{settings.web_port}",
                    "data_dir": self.dir / "data",
                    # The logs are the only account of what a killed process was doing.
                    "log_level": "INFO",
                }
            )
            create_topics(self.settings)
            trigger = {"id": "cart", "kind": "abandoned_cart", "delay": delay_s}
            publish_definitions(
                self.settings.kafka_bootstrap, self.settings.topic("trigger-config"), [trigger]
            )
        except BaseException:
            self.catcher.stop()
            raise
        self.workers: list[FaultProcess] = []
        self.deliverers: list[FaultProcess] = []
        self.timeline: list[str] = []
        self._t0 = time.monotonic()

    # -- processes ------------------------------------------------------------------
    def add_worker(self) -> FaultProcess:
        n = len(self.workers) + 1
        settings = self.settings.model_copy(
            update={"web_port": free_port(), "data_dir": self.dir / f"data-worker-{n}"}
        )
        proc = FaultProcess("worker", settings, self.dir / f"worker-{n}.log", f"worker-{n}")
        self.workers.append(proc)
        return proc

    def add_deliverer(self) -> FaultProcess:
        n = len(self.deliverers) + 1
        settings = self.settings.model_copy(update={"delivery_web_port": free_port()})
        proc = FaultProcess("deliver", settings, self.dir / f"deliver-{n}.log", f"deliver-{n}")
        self.deliverers.append(proc)
        return proc

    def start(self, proc: FaultProcess) -> FaultProcess:
        proc.start()
        self.note(f"start {proc.name} (start #{proc.starts}, pid {proc.proc and proc.proc.pid})")
        return proc

    def kill(self, proc: FaultProcess, why: str = "") -> None:
        uptime = proc.uptime
        proc.kill()
        self.note(f"kill -9 {proc.name} after {uptime:.1f}s up" + (f" ({why})" if why else ""))

    def health(self, proc: FaultProcess) -> tuple[int, str]:
        """(HTTP status, body) of the process's /health; (0, "") when nobody answers."""
        url = f"http://127.0.0.1:{proc.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return 0, ""

    def wait_healthy(self, proc: FaultProcess, timeout_s: float = 90.0) -> None:
        def ready() -> bool:
            if not proc.alive:
                raise AssertionError(
                    f"{proc.name} exited (rc {proc.proc and proc.proc.returncode}) before it "
                    f"was healthy; log tail:\n{proc.log()[-3000:]}"
                )
            return self.health(proc)[0] == 200

        wait_for(ready, f"{proc.name} to answer /health with 200", timeout_s)
        self.note(f"{proc.name} healthy after {proc.uptime:.1f}s up")

    def unexpected_exits(self) -> list[str]:
        """Processes that died although nobody killed or stopped them."""
        return [
            f"{p.name} exited on its own with rc {p.proc.returncode}"
            for p in (*self.workers, *self.deliverers)
            if p.proc is not None and not p.meant_down and p.proc.poll() is not None
        ]

    # -- record keeping ---------------------------------------------------------------
    def note(self, text: str) -> None:
        self.timeline.append(f"{time.monotonic() - self._t0:7.1f}s {text}")

    def logs_tail(self, chars: int = 2500) -> str:
        parts = []
        for proc in (*self.workers, *self.deliverers):
            parts.append(f"--- {proc.name} ({proc.log_path}) ---\n{proc.log()[-chars:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for proc in (*self.deliverers, *self.workers):
            proc.stop()
        self.catcher.stop()


def env_for_tests(
    broker: Any, redis_url: str, make: Callable[..., Settings], tmp: Path
) -> FaultEnv:
    """A ``FaultEnv`` on the suite's fixtures (``broker``, ``redis_url``, ``make_settings``)."""
    env = FaultEnv(
        bootstrap=broker.bootstrap,
        redis_url=redis_url,
        scratch=tmp,
        make=make,
        seed=fault_seed(),
        external_kafka=bool(os.environ.get("NUDGE_TEST_KAFKA_BOOTSTRAP")),
    )
    print(f"fault scenario seed {env.seed} (replay with NUDGE_FAULT_SEED={env.seed})")
    return env
