"""Stream-worker crashes while the storefront keeps producing: kill -9, again and again.

Each customer signs up (subscribed), adds one item to the cart a second later, and so
is owed exactly one abandoned-cart email. After every kill, before the restart, the
group's committed offsets are checked against the durable effects (``fault_offsets``).

* ``worker_kills``: one stream worker killed at random moments: half of the kills
  within 0-3 s of its start (while it starts, joins, recovers), half a random 0-6 s
  after it became healthy again (while it consumes, fires timers and commits).
* ``rebalance_kills``: two workers taking turns. The one running (the incumbent) sees
  a newcomer join; once the incumbent's /health says it is rebalancing (503), it is
  killed a random 0-1.5 s later; the newcomer takes over, and the dead one becomes
  the next newcomer.
"""

from __future__ import annotations

import random
import time
import uuid

from tests.fault_offsets import (
    OffsetCheck,
    check_committed_effects,
    distinct_violations,
    summarize,
)
from tests.fault_shop import ShopLoad, signups_with_carts
from tests.fault_support import FaultEnv, FaultProcess, Rig
from tests.fault_verdict import MailLog, Verdict, judge, settle
from tests.pipeline_support import wait_for

EARLY_KILL_S = (0.0, 3.0)
AFTER_HEALTHY_S = (0.0, 6.0)


def worker_kills(
    env: FaultEnv,
    *,
    customers: int,
    kills: int,
    rate_per_s: float,
    partitions: int = 4,
    store: str = "memory://",
) -> Verdict:
    rng = random.Random(env.seed)
    name = f"stream-kills-{store.split(':')[0]}-{uuid.uuid4().hex[:6]}"
    rig = Rig(env, name, partitions=partitions, store=store)
    ids = [f"sk{i:05d}" for i in range(customers)]
    shop = ShopLoad(rig.settings, signups_with_carts(ids, rate_per_s=rate_per_s))
    checks: list[OffsetCheck] = []
    try:
        worker, deliverer = rig.start(rig.add_worker()), rig.start(rig.add_deliverer())
        rig.wait_healthy(worker)
        rig.wait_healthy(deliverer)
        shop.start()
        time.sleep(rng.uniform(1.0, 4.0))
        for k in range(1, kills + 1):
            if k % 2 == 0:
                up = rng.uniform(*EARLY_KILL_S)
                _sleep_until(worker.started_at + up)
                moment = f"{up:.1f}s after its start"
            else:
                if worker.starts > 1:
                    rig.wait_healthy(worker)
                wait = rng.uniform(*AFTER_HEALTHY_S)
                time.sleep(wait)
                moment = f"{wait:.1f}s after it was healthy"
            rig.kill(worker, f"kill {k}/{kills}, {moment}")
            checks.append(check_committed_effects(rig.settings, f"after kill {k}"))
            rig.note(checks[-1].line())
            rig.start(worker)
        return _finish(rig, shop, set(ids), checks, [worker], kills)
    finally:
        shop.abort()
        rig.close()


def rebalance_kills(
    env: FaultEnv, *, customers: int, kills: int, rate_per_s: float, partitions: int = 4
) -> Verdict:
    rng = random.Random(env.seed + 1)
    rig = Rig(env, f"rebalance-kills-{uuid.uuid4().hex[:6]}", partitions=partitions)
    ids = [f"rk{i:05d}" for i in range(customers)]
    shop = ShopLoad(rig.settings, signups_with_carts(ids, rate_per_s=rate_per_s))
    checks: list[OffsetCheck] = []
    unseen = 0
    try:
        incumbent, newcomer = rig.add_worker(), rig.add_worker()
        rig.start(incumbent)
        rig.wait_healthy(rig.start(rig.add_deliverer()))
        rig.wait_healthy(incumbent)
        shop.start()
        for k in range(1, kills + 1):
            time.sleep(rng.uniform(1.0, 4.0))  # the incumbent works alone for a while
            rig.start(newcomer)
            if not _saw_rebalance(rig, incumbent):
                unseen += 1
            time.sleep(rng.uniform(0.0, 1.5))
            rig.kill(incumbent, f"kill {k}/{kills}, during the rebalance")
            checks.append(check_committed_effects(rig.settings, f"after kill {k}"))
            rig.note(checks[-1].line())
            rig.wait_healthy(newcomer)
            incumbent, newcomer = newcomer, incumbent
        rig.start(newcomer)  # both run at the end: one more rebalance, no kill
        facts = [f"rebalances not seen on /health before the kill: {unseen} of {kills}"]
        return _finish(rig, shop, set(ids), checks, [incumbent, newcomer], kills, facts)
    finally:
        shop.abort()
        rig.close()


def _saw_rebalance(rig: Rig, incumbent: FaultProcess) -> bool:
    """Wait until the incumbent's /health says 503 (a rebalance runs); False if never."""
    try:
        wait_for(lambda: rig.health(incumbent)[0] == 503, "the incumbent to rebalance", 25)
    except AssertionError:
        rig.note(f"{incumbent.name} never reported a rebalance; killing it anyway")
        return False
    rig.note(f"{incumbent.name} is rebalancing (/health 503)")
    return True


def _finish(
    rig: Rig,
    shop: ShopLoad,
    ids: set[str],
    checks: list[OffsetCheck],
    workers: list[FaultProcess],
    kills: int,
    facts: list[str] | None = None,
) -> Verdict:
    for worker in workers:
        rig.wait_healthy(worker, 120)
    shop.finish()
    expected = ids - set(shop.failed)
    mail = MailLog(rig.catcher.folder)
    settle(rig, mail, expected, deadline_s=120)
    # Once more with the workers running: shows how far they committed, and whether a
    # customer still missing mail sits below that (committed, no effect) or above it.
    final = check_committed_effects(rig.settings, "at the end (workers running)")
    checks = [*checks, final]
    violations = distinct_violations(checks)
    problems = []
    if violations:
        problems.append(f"{violations} input records committed before their effect:")
        problems += summarize(checks)
    checked = sum(c.checked for c in checks)
    return judge(
        rig,
        mail,
        expected,
        problems=problems,
        facts=[
            f"{kills} kills; committed offsets checked after each: {checked} records below "
            f"them in all, {violations} distinct records without a durable effect",
            final.line(),
            *(facts or []),
            *(f"storefront could not produce for {c}" for c in shop.failed[:5]),
        ],
    )


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))
