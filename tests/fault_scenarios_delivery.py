"""Delivery-worker crashes with messages in flight to a slow SMTP server.

The stream worker runs undisturbed; the storefront's carts become send commands; the
SMTP server stalls every transaction (``fault_smtp.Stalling``). A kill is aimed: the
harness waits until the server holds at least one transaction in the stall, then
kills ``nudge deliver`` with SIGKILL and restarts it; before the next kill it waits
for the new process to deliver something, so every kill hits a working worker.

* ``kills_before_data``: the stall is at RCPT. Nothing was handed over, so resending
  is safe: 0 lost and 0 duplicates are required.
* ``kills_inside_data``: the stall is after the message arrived, before the reply.
  Those outcomes are truly unknown to the client; the system must say so. Required:
  lost + duplicates <= the commands reported ``interrupted_uncertain``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.fault_shop import ShopLoad, signups_with_carts
from tests.fault_smtp import StallCounts, Stalling
from tests.fault_support import FaultEnv, FaultProcess, Rig
from tests.fault_verdict import MailLog, Verdict, judge, settle
from tests.pipeline_support import wait_for

IN_FLIGHT_WAIT_S = 60.0
PROGRESS_WAIT_S = 90.0


def kills_before_data(
    env: FaultEnv, *, customers: int, kills: int, stall_s: tuple[float, float] = (0.5, 2.0)
) -> Verdict:
    return _delivery_kills(env, "deliver-kills-at-rcpt", customers, kills, rcpt_stall_s=stall_s)


def kills_inside_data(
    env: FaultEnv, *, customers: int, kills: int, stall_s: tuple[float, float] = (1.5, 3.0)
) -> Verdict:
    return _delivery_kills(env, "deliver-kills-in-data", customers, kills, data_stall_s=stall_s)


def _delivery_kills(env: FaultEnv, name: str, customers: int, kills: int, **stall: Any) -> Verdict:
    rng = random.Random(env.seed + 2)
    handlers: list[Stalling] = []

    def wrap(inner: Any) -> Stalling:
        handlers.append(Stalling(inner, seed=env.seed, **stall))
        return handlers[0]

    in_data = "data_stall_s" in stall
    rig = Rig(env, f"{name}-{uuid.uuid4().hex[:6]}", wrap=wrap)
    counts = handlers[0].counts
    stalled: Callable[[], int] = (
        (lambda: counts.data_in_flight) if in_data else (lambda: counts.rcpt_in_flight)
    )
    prefix = "dd" if in_data else "dr"
    ids = [f"{prefix}{i:04d}" for i in range(customers)]
    shop = ShopLoad(rig.settings, signups_with_carts(ids, rate_per_s=8.0))
    at_kill: list[int] = []
    try:
        worker = rig.start(rig.add_worker())
        deliverer = rig.start(rig.add_deliverer())
        rig.wait_healthy(worker)
        rig.wait_healthy(deliverer)
        shop.start()
        for k in range(1, kills + 1):
            if not _wait(rig, lambda: stalled() > 0, "a transaction in the stall"):
                break
            time.sleep(rng.uniform(0.0, 0.3))
            at_kill.append(stalled())
            rig.kill(deliverer, f"kill {k}/{kills} with {at_kill[-1]} transactions stalled")
            time.sleep(rng.uniform(0.0, 1.0))
            accepted = counts.accepted
            rig.start(deliverer)
            if k < kills:
                _wait_for_progress(rig, deliverer, counts, accepted)
        shop.finish()
        mail = MailLog(rig.catcher.folder)
        settle(rig, mail, set(ids) - set(shop.failed), deadline_s=180, give_up_after_s=90)
        facts = [
            f"{len(at_kill)} kills, with {sum(at_kill)} transactions stalled "
            f"{'inside DATA' if in_data else 'at RCPT'} at the kills ({at_kill})",
            counts.describe(),
        ]
        return judge(
            rig,
            mail,
            set(ids) - set(shop.failed),
            facts=facts,
            uncertain_tolerated=in_data,
        )
    finally:
        shop.abort()
        rig.close()


def _wait(rig: Rig, condition: Callable[[], bool], what: str) -> bool:
    try:
        wait_for(condition, what, IN_FLIGHT_WAIT_S)
    except AssertionError:
        rig.note(f"no {what} within {IN_FLIGHT_WAIT_S:.0f}s; no more kills")
        return False
    return True


def _wait_for_progress(rig: Rig, proc: FaultProcess, counts: StallCounts, before: int) -> None:
    """Until the restarted worker got a message accepted (noted, not failed, if it never
    does: the verdict then says what was lost)."""
    try:
        wait_for(
            lambda: counts.accepted > before,
            f"{proc.name} to deliver after its restart",
            PROGRESS_WAIT_S,
        )
        rig.note(f"{proc.name} delivers again after {proc.uptime:.1f}s up")
    except AssertionError:
        rig.note(f"{proc.name} delivered nothing in {PROGRESS_WAIT_S:.0f}s after its restart")
