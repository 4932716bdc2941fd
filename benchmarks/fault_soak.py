"""Fault soak (issue 8, "nothing lost, nothing twice"): the fault suite's scenarios, longer.

The same scenarios as ``tests/test_faults_*.py`` (they live in ``tests/fault_scenarios_*``),
with many more kills, more customers and a 60 s SMTP outage, against the embedded
broker and the Redis ``ensure_redis`` finds. Prints each scenario's verdict as it ends
(the full report, logs included, when it failed), then a table of lost and duplicate
counts per scenario and in total. Stops by itself; exit status 1 if anything was lost,
duplicated or otherwise wrong.

    python benchmarks/fault_soak.py [--scale 1.0] [--only stream,rebalance,rcpt,data,smtp,redis]
        [--smtp-outage 60] [--redis-outage 30] [--seed N]

``--scale`` multiplies kills and customers (0.25 for a quick look, about 10 minutes;
1.0 takes about 40). The broker restart runs only with ``NUDGE_TEST_KAFKA_BOOTSTRAP``
and ``NUDGE_TEST_KAFKA_RESTART_CMD`` set, as in the tests.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from _harness import REPO, environment, machine, markdown_table, say

sys.path.insert(0, str(REPO))  # the scenarios and their harness live under tests/

from tests.fault_scenarios_delivery import kills_before_data, kills_inside_data
from tests.fault_scenarios_outages import broker_restart, redis_outage, smtp_outage
from tests.fault_scenarios_stream import rebalance_kills, worker_kills
from tests.fault_support import FaultEnv
from tests.fault_verdict import Verdict

Scenario = Callable[[FaultEnv], Verdict]


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    def n(value: int, least: int = 1) -> int:
        return max(least, round(value * args.scale))

    found: dict[str, Scenario] = {
        "stream": lambda e: worker_kills(e, customers=n(1000, 50), kills=n(40, 4), rate_per_s=2.5),
        "rebalance": lambda e: rebalance_kills(
            e, customers=n(400, 40), kills=n(20, 2), rate_per_s=2.0
        ),
        "rcpt": lambda e: kills_before_data(e, customers=n(200, 20), kills=n(10, 2)),
        "data": lambda e: kills_inside_data(e, customers=n(160, 20), kills=n(10, 2)),
        "smtp": lambda e: smtp_outage(e, outage_s=args.smtp_outage, customers=n(60, 10)),
        "redis": lambda e: redis_outage(e, outage_s=args.redis_outage, per_group=n(15, 4)),
    }
    restart = os.environ.get("NUDGE_TEST_KAFKA_RESTART_CMD")
    if os.environ.get("NUDGE_TEST_KAFKA_BOOTSTRAP") and restart:
        found["broker"] = lambda e: broker_restart(e, restart, customers=n(200, 20))
    return found


def row(name: str, verdict: Verdict | None, minutes: float, error: str = "") -> list[Any]:
    if verdict is None:
        return [name, "-", "-", "-", "-", error, f"{minutes:.1f}", "no"]
    problems = len(verdict.problems) + (sum(verdict.forbidden.values()) if verdict.forbidden else 0)
    return [
        name,
        verdict.intended,
        len(verdict.lost),
        verdict.extra_emails,
        verdict.uncertain,
        problems,
        f"{minutes:.1f}",
        "yes" if verdict.ok else "no",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="kills and customers x")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--smtp-outage", type=float, default=60.0, help="seconds")
    parser.add_argument("--redis-outage", type=float, default=30.0, help="seconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    chosen = scenarios(args)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = set(wanted) - set(chosen)
        if unknown:
            parser.error(f"unknown or unavailable scenarios: {sorted(unknown)}")
        chosen = {k: v for k, v in chosen.items() if k in wanted}

    rows: list[list[Any]] = []
    verdicts: list[Verdict] = []
    failed = False
    with environment() as env:
        external = os.environ.get("NUDGE_TEST_KAFKA_BOOTSTRAP")

        def make(**overrides: Any) -> Any:
            if external:
                overrides.setdefault("kafka_bootstrap", external)
            return env.settings("fault", **overrides)

        fenv = FaultEnv(
            bootstrap=external or env.bootstrap,
            redis_url=env.redis_url,
            scratch=env.scratch,
            make=make,
            seed=seed,
            external_kafka=bool(external),
        )
        say(f"scratch {env.scratch}; broker {fenv.bootstrap}; redis {env.redis_url}; seed {seed}")
        if "broker" not in chosen:
            say("broker restart: skipped (needs NUDGE_TEST_KAFKA_BOOTSTRAP and _RESTART_CMD)")
        for name, run in chosen.items():
            say(f"\n== {name} ==")
            started = time.monotonic()
            try:
                verdict = run(fenv)
            except Exception as exc:  # a scenario that could not finish is a failure too
                traceback.print_exc()
                failed = True
                rows.append(row(name, None, (time.monotonic() - started) / 60, repr(exc)[:80]))
                continue
            minutes = (time.monotonic() - started) / 60
            verdicts.append(verdict)
            failed |= not verdict.ok
            say(verdict.report() if not verdict.ok else "\n".join([verdict.line(), *verdict.facts]))
            rows.append(row(name, verdict, minutes))

    total = [
        "total",
        sum(v.intended for v in verdicts),
        sum(len(v.lost) for v in verdicts),
        sum(v.extra_emails for v in verdicts),
        sum(v.uncertain for v in verdicts),
        sum(r[5] for r in rows if isinstance(r[5], int)),
        f"{sum(float(r[6]) for r in rows):.1f}",
        "no" if failed else "yes",
    ]
    say(f"\nfault soak, seed {seed}, scale {args.scale:g}; {machine()}")
    headers = ["scenario", "intended", "lost", "duplicates", "uncertain", "problems", "min", "ok"]
    say(markdown_table(headers, [*rows, total]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
