"""``nudge worker`` and ``nudge deliver``: production commands.

They start no services: Kafka (with nudge's topics) and Redis are the operator's, and
each missing piece is refused at start-up with one line naming its setting
(``nudge.startup``). SIGTERM and Ctrl-C stop them within ``NUDGE_SHUTDOWN_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Any

from nudge.settings import Settings
from nudge.shutdown import ShutdownDeadline


def run_worker(settings: Settings) -> None:
    from faust import Worker as FaustWorker

    from nudge.streams.app import create_app

    # Every customer's state lives in memory as long-lived objects; with the default
    # thresholds the cyclic collector rescans them all over and over (measured: about
    # 12% of throughput). Garbage here is almost all freed by reference counting.
    gc.set_threshold(100_000, 50, 1000)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    built = create_app(settings)
    deadline = ShutdownDeadline(settings.shutdown_timeout_s, "nudge worker")

    class Worker(FaustWorker):
        def _schedule_shutdown(self, signum: signal.Signals) -> None:
            deadline.arm()
            super()._schedule_shutdown(signum)

    faust_worker = Worker(built.app, loglevel=settings.log_level.upper(), quiet=True)
    # Faust's progress spinner lowers the root logger to DEBUG so that it spins on
    # every record: every debug call in aiokafka then builds a LogRecord.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()


def run_deliver(settings: Settings) -> None:
    from nudge.delivery.service import run_delivery
    from nudge.trigger_registry import TriggerFeed, TriggerRegistry

    deadline = ShutdownDeadline(settings.shutdown_timeout_s, "nudge deliver")

    async def run() -> None:
        stop = asyncio.Event()

        def on_signal(*_: Any) -> None:
            deadline.arm()
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        registry = TriggerRegistry()
        feed = TriggerFeed.from_settings(registry, settings)
        feed_task = asyncio.create_task(feed.run())
        try:
            ready = asyncio.create_task(registry.ready.wait())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            stopped.cancel()
            if not stop.is_set():
                await run_delivery(settings, stop=stop, triggers=registry)
        finally:
            feed_task.cancel()
            await asyncio.gather(feed_task, return_exceptions=True)

    asyncio.run(run())
