"""Shared helpers for the benchmark scripts: processes, env, metrics, stats, tables.

Nothing here times anything by itself; every script measures its own figures and a
ceiling or peer in the same run, and prints medians over repeats.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from nudge import processes
from nudge.embedded import EmbeddedBroker, ensure_redis, free_port, wait_for_port
from nudge.embedded.redis_server import EmbeddedRedis
from nudge.settings import Settings
from nudge.topics import create_topics

REPO = Path(__file__).resolve().parent.parent


# -- processes ------------------------------------------------------------------
def topic_totals(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records, key and value bytes) of a whole topic, counted by reading it (the
    embedded broker's high watermark stops at the start of a partition's last batch)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        count = size = 0
        while batch := consumer.consume(num_messages=10_000, timeout=3.0):
            for message in batch:
                if message.error() is None:
                    count += 1
                    size += len(message.key() or b"") + len(message.value() or b"")
        return count, size
    finally:
        consumer.close()


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (``VmRSS``) or at its peak (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``."""
    processes.stop_process(proc, grace_s)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def environment(work: Path | None = None) -> Iterator[Environment]:
    """A broker, Redis and a scratch folder; everything started is stopped on exit.

    SIGTERM becomes SystemExit so that ``finally`` blocks stop the children too.
    """
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    scratch = work or Path(tempfile.mkdtemp(prefix="nudge-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = Environment(scratch)
    try:
        env.start()
        yield env
    finally:
        env.close()


class Environment:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.broker: EmbeddedBroker | None = None
        self.redis_url = ""
        self._redis: EmbeddedRedis | None = None
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.broker = EmbeddedBroker(log_path=self.scratch / "broker.log").start()
        self.redis_url, self._redis = ensure_redis(None)

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    def settings(self, tag: str, **overrides: Any) -> Settings:
        """Settings for one repeat: a fresh topic prefix, app id and Redis namespace."""
        run = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
        values: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "topic_prefix": f"{run}.",
            "app_id": run,
            "redis_url": self.redis_url,
            "redis_namespace": run,
            "web_port": free_port(),
            "delivery_web_port": free_port(),
            "data_dir": self.scratch / run,
        }
        values.update(overrides)
        values["public_url"] = f"http://localhost:{values['web_port']}"
        return Settings(**values)

    def spawn(self, command: str, settings: Settings, log_name: str) -> subprocess.Popen[bytes]:
        """``python -m nudge COMMAND`` with the settings as NUDGE_* variables, on the
        topics the operator (here) creates."""
        create_topics(settings)
        log = open(self.scratch / log_name, "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "nudge", command],
            env={**os.environ, **nudge_env(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.children.append(proc)
        return proc

    def spawn_python(self, code: str, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.scratch / log_name, "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        with contextlib.suppress(ValueError):
            self.children.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.children):
            with contextlib.suppress(Exception):
                stop_process(proc)
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
        if self._redis is not None:
            self._redis.stop()


def nudge_env(settings: Settings) -> dict[str, str]:
    return settings.as_env()


# -- mail catcher in another process ---------------------------------------------
_CATCHER = """
import sys, time
from pathlib import Path
from nudge.embedded import MailCatcher
catcher = MailCatcher(Path(sys.argv[1]), port=int(sys.argv[2])).start()
try:
    while True:
        time.sleep(3600)
finally:
    catcher.stop()
"""


def start_mail_catcher(env: Environment, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """aiosmtpd (nudge's MailCatcher) in a child process, writing .eml files to ``folder``."""
    port = free_port()
    proc = env.spawn_python(_CATCHER, str(folder), str(port), log_name="mailcatcher.log")
    wait_for_port("127.0.0.1", port)
    return proc, port


def accepted_files(folder: Path) -> list[tuple[float, Path]]:
    """(accept time in epoch seconds, path) of every caught message, oldest first.

    MailCatcher names each file ``<time.time_ns()>-<seq>.eml`` as it accepts it.
    """
    result = [(int(p.name.split("-", 1)[0]) / 1e9, p) for p in folder.glob("*.eml")]
    return sorted(result)


# -- HTTP and Prometheus -----------------------------------------------------------
def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float,
    children: Sequence[subprocess.Popen[bytes]] = (),
    interval_s: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"a child exited ({child.returncode}) while waiting: {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting: {what}")
        time.sleep(interval_s)


# -- Kafka -------------------------------------------------------------------------
def produce_all(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]], **overrides: Any
) -> int:
    """Produce (key, value) records with nudge's producer config; returns how many."""
    from confluent_kafka import Producer

    from nudge.kafka import producer_config

    producer = Producer(producer_config(bootstrap, **overrides))
    failures: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"produce to {topic} failed: {remaining} left, {failures[:3]}")
    return count


# -- statistics and output ---------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def crossing_time(samples: Sequence[tuple[float, float]], level: float) -> float | None:
    """When a rising counter sampled as (t, value) first reached ``level`` (interpolated)."""
    previous: tuple[float, float] | None = None
    for t, value in samples:
        if value >= level:
            if previous is None or value == previous[1]:
                return t
            t0, v0 = previous
            return t0 + (t - t0) * (level - v0) / (value - v0)
        previous = (t, value)
    return None


def steady_rate(samples: Sequence[tuple[float, float]], total: float) -> float:
    """Rate between the 10 % and 90 % crossings of ``total``: start-up excluded."""
    t10 = crossing_time(samples, 0.1 * total)
    t90 = crossing_time(samples, 0.9 * total)
    if t10 is None or t90 is None or t90 <= t10:
        return float("nan")
    return 0.8 * total / (t90 - t10)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " + (
        f"Python {platform.python_version()}"
    )


def say(*parts: object) -> None:
    print(*parts, flush=True)
