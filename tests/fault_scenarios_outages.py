"""Outages of what nudge depends on: the SMTP server, Redis, the Kafka broker.

* ``smtp_outage``: the SMTP port is closed (connections refused) for ``outage_s`` while
  carts come due; all must be delivered exactly once after it returns, however long
  the outage (the retry window is ``NUDGE_SEND_RETRY_FOR``, two days by default).
* ``redis_outage``: a Redis of its own (``DurableRedis``: append-only file, fsync on
  every write) is SIGKILLed and, ``outage_s`` later, restarted on the same port with its
  data: a Redis that crashed and came back, refusing connections meanwhile. Profiles,
  unsubscribes and carts arrive during the outage. The stream worker must stay up and
  say on /health what it waits for (503, naming redis); afterwards every profile and
  consent is in Redis, the unsubscribed get nothing and every other cart one email.
* ``broker_restart``: runs a command that restarts a real Kafka (the embedded broker
  keeps its log in memory, so its restart would be a new, empty cluster).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Sequence

import redis as sync_redis

from nudge.embedded.durable_redis import DurableRedis
from nudge.embedded.net import is_listening
from tests.fault_offsets import read_consents
from tests.fault_shop import (
    PROFILE_TO_CART_S,
    Planned,
    ShopLoad,
    cart_add,
    profile,
    signups_with_carts,
    spread,
    unsubscribe,
)
from tests.fault_support import FaultEnv, FaultProcess, Rig
from tests.fault_verdict import MailLog, Verdict, judge, settle
from tests.pipeline_support import wait_for


def smtp_outage(env: FaultEnv, *, outage_s: float, customers: int) -> Verdict:
    rig = Rig(env, f"smtp-outage-{uuid.uuid4().hex[:6]}", send_backoff_s=0.2)
    warm = [f"sw{i:03d}" for i in range(4)]
    during = [f"so{i:04d}" for i in range(customers)]
    try:
        mail = _started_and_warm(rig, warm)
        rig.catcher.stop()
        down_at = time.monotonic()
        rig.note(f"SMTP server stopped: port {rig.catcher.port} refuses connections")
        closed = not is_listening("127.0.0.1", rig.catcher.port)
        # Every cart comes due while the port is closed (due = cart + delay).
        window = max(1.0, outage_s - PROFILE_TO_CART_S - rig.delay_s - 2.0)
        shop = ShopLoad(rig.settings, signups_with_carts(during, rate_per_s=customers / window))
        shop.start()
        time.sleep(max(0.0, down_at + outage_s - time.monotonic()))
        during_outage = mail.refresh().total() - len(warm)
        rig.catcher.start()
        rig.note(f"SMTP server back on port {rig.catcher.port} after {outage_s:.0f}s")
        shop.finish()
        expected = set(warm) | (set(during) - set(shop.failed))
        settle(rig, mail, expected, deadline_s=180, give_up_after_s=max(60.0, outage_s + 30))
        problems = [] if closed else ["the SMTP port still accepted connections when stopped"]
        facts = [
            f"SMTP refused connections for {outage_s:.0f}s; {len(during)} carts came due "
            f"meanwhile; {during_outage} emails arrived during the outage"
        ]
        return judge(rig, mail, expected, problems=problems, facts=facts)
    finally:
        rig.close()


def redis_outage(env: FaultEnv, *, outage_s: float, per_group: int) -> Verdict:
    redis = DurableRedis(env.scratch / f"redis-{uuid.uuid4().hex[:6]}").start()
    try:
        rig = Rig(env, f"redis-outage-{uuid.uuid4().hex[:6]}", redis_url=redis.url)
    except BaseException:
        redis.stop()
        raise
    warm = [f"rw{i:03d}" for i in range(3)]
    known = [f"ra{i:03d}" for i in range(per_group)]  # profile before, cart during
    leaving = [f"rc{i:03d}" for i in range(per_group)]  # profile before, unsubscribe + cart
    new = [f"rb{i:03d}" for i in range(per_group)]  # sign-up + cart during
    refusing = [f"rd{i:03d}" for i in range(per_group)]  # sign-up unsubscribed + cart
    problems: list[str] = []
    try:
        before = [profile(0.0, cid) for cid in known + leaving]
        mail = _started_and_warm(rig, warm, before)
        subscribed = {cid: "subscribed" for cid in known + leaving}
        wait_for(
            lambda: read_consents(rig.settings, list(subscribed)) == subscribed,
            "the profiles sent before the outage to reach Redis",
            60,
        )
        worker = rig.workers[0]
        marker = _set_marker(redis.url)
        redis.crash()
        down_at = time.monotonic()
        rig.note(f"Redis killed (SIGKILL); port {redis.port} refuses connections")
        rate = 4 * per_group / max(1.0, outage_s - 6.0)
        plan: list[Planned] = [
            *spread(cart_add, known, start_s=0.5, rate_per_s=rate),
            *spread(unsubscribe, leaving, start_s=0.5, rate_per_s=rate),
            *spread(cart_add, leaving, start_s=0.5 + PROFILE_TO_CART_S, rate_per_s=rate),
            *signups_with_carts(new, start_s=0.5, rate_per_s=rate),
            *spread(_unsubscribed_profile, refusing, start_s=0.5, rate_per_s=rate),
            *spread(cart_add, refusing, start_s=0.5 + PROFILE_TO_CART_S, rate_per_s=rate),
        ]
        shop = ShopLoad(rig.settings, plan)
        shop.start()
        said = _health_names_redis(rig, worker, down_at + outage_s - 0.5)
        if said is None:
            problems.append("the stream worker's /health never said 503 naming redis while down")
        time.sleep(max(0.0, down_at + outage_s - time.monotonic()))
        if not worker.alive:
            problems.append("the stream worker did not stay up while Redis was down")
        redis.start()
        if not _has_marker(redis.url, marker):
            problems.append("harness: Redis came back without its data (append-only file?)")
        rig.note(f"Redis back on port {redis.port} with its data after {outage_s:.0f}s")
        shop.finish()
        if worker.alive:
            rig.wait_healthy(worker, 90)
        expected = set(warm + known + new) - set(shop.failed)
        settle(rig, mail, expected, deadline_s=120)
        wanted = {cid: "subscribed" for cid in known + new}
        wanted |= {cid: "unsubscribed" for cid in leaving + refusing}
        problems += _profiles_applied(rig, wanted)
        facts = [
            f"Redis down {outage_s:.0f}s; meanwhile {len(known)} carts of known customers, "
            f"{len(leaving)} unsubscribes then carts, {len(new)} sign-ups with carts, "
            f"{len(refusing)} unsubscribed sign-ups with carts",
            f"/health while Redis was down: {said or 'never 503 naming redis'}",
        ]
        forbidden = set(leaving + refusing)
        return judge(rig, mail, expected, forbidden=forbidden, problems=problems, facts=facts)
    finally:
        rig.close()
        redis.stop()


def broker_restart(env: FaultEnv, restart_command: str, *, customers: int) -> Verdict:
    rig = Rig(env, f"broker-restart-{uuid.uuid4().hex[:6]}")
    ids = [f"kb{i:04d}" for i in range(customers)]
    try:
        mail = _started_and_warm(rig, [])
        shop = ShopLoad(rig.settings, signups_with_carts(ids, rate_per_s=3.0))
        shop.start()
        time.sleep(min(5.0, shop.duration_s / 3))
        rig.note(f"restarting the broker: {restart_command}")
        done = subprocess.run(restart_command, shell=True, timeout=300, check=False)
        rig.note(f"restart command exited with {done.returncode}")
        shop.finish()
        expected = set(ids) - set(shop.failed)
        settle(rig, mail, expected, deadline_s=300, give_up_after_s=120)
        problems = [] if done.returncode == 0 else [f"restart command failed: {done.returncode}"]
        return judge(rig, mail, expected, problems=problems)
    finally:
        rig.close()


def _started_and_warm(rig: Rig, warm: list[str], extra: Sequence[Planned] = ()) -> MailLog:
    """Start one stream and one delivery worker; prove the pipeline delivers (``warm``)."""
    worker, deliverer = rig.start(rig.add_worker()), rig.start(rig.add_deliverer())
    rig.wait_healthy(worker)
    rig.wait_healthy(deliverer)
    mail = MailLog(rig.catcher.folder)
    shop = ShopLoad(rig.settings, [*signups_with_carts(warm, rate_per_s=10.0), *extra])
    shop.start()
    shop.finish()
    if warm:
        addresses = {f"{cid}@example.com" for cid in warm}
        wait_for(lambda: addresses <= set(mail.refresh()), "the warm-up emails", 90)
        rig.note(f"warm-up: {len(warm)} emails delivered before any fault")
    return mail


def _set_marker(url: str) -> str:
    """A key written just before the crash: proof that the restart kept the data."""
    marker = f"fault-marker-{uuid.uuid4().hex}"
    with sync_redis.Redis.from_url(url) as client:
        client.set(marker, "1")
    return marker


def _has_marker(url: str, marker: str) -> bool:
    with sync_redis.Redis.from_url(url, socket_timeout=10) as client:
        return bool(client.get(marker))


def _unsubscribed_profile(at_s: float, cid: str) -> Planned:
    return profile(at_s, cid, consent="unsubscribed")


def _health_names_redis(rig: Rig, worker: FaultProcess, until: float) -> str | None:
    """Poll the worker's /health until it answers 503 naming redis; its body, or None."""
    while time.monotonic() < until:
        status, body = rig.health(worker)
        if status == 503 and "redis" in body.lower():
            rig.note(f"{worker.name} /health: 503 {body[:200]}")
            return f"503 {body[:200]}"
        time.sleep(0.3)
    return None


def _profiles_applied(rig: Rig, wanted: dict[str, str]) -> list[str]:
    """Wait (a while) until Redis holds each customer's expected consent; the misses."""
    try:
        wait_for(
            lambda: read_consents(rig.settings, list(wanted)) == wanted,
            "every profile and consent to be applied in Redis",
            60,
        )
        return []
    except AssertionError:
        now = read_consents(rig.settings, list(wanted))
        wrong = {c: (now[c], w) for c, w in wanted.items() if now[c] != w}
        shown = ", ".join(f"{c}: {got} (want {w})" for c, (got, w) in list(wrong.items())[:8])
        return [f"{len(wrong)} profiles not applied in Redis after it returned: {shown}"]
