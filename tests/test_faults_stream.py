"""Issue 8, stream side: kill -9 the stream worker again and again, also mid-rebalance,
while the storefront keeps producing; every cart gets exactly one email, and no
committed offset ever runs ahead of its durable effect; the memory store and RocksDB.
21 kills in all."""

from __future__ import annotations

import pytest

from tests.fault_scenarios_stream import rebalance_kills, worker_kills
from tests.fault_support import FaultEnv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.faults,
    pytest.mark.timeout(600),
]


def test_stream_worker_killed_at_random_moments(fault_env: FaultEnv) -> None:
    verdict = worker_kills(fault_env, customers=240, kills=10, rate_per_s=2.5)
    print(verdict.report() if verdict.ok else verdict.line())  # a failure reports in full
    assert verdict.ok, verdict.report()


def test_stream_worker_on_rocksdb_killed_at_random_moments(fault_env: FaultEnv) -> None:
    # Each restart opens the same RocksDB files and reads only the changelog's tail.
    verdict = worker_kills(fault_env, customers=150, kills=6, rate_per_s=2.5, store="rocksdb://")
    print(verdict.report() if verdict.ok else verdict.line())  # a failure reports in full
    assert verdict.ok, verdict.report()


def test_stream_worker_killed_during_rebalances(fault_env: FaultEnv) -> None:
    verdict = rebalance_kills(fault_env, customers=150, kills=5, rate_per_s=2.0)
    print(verdict.report() if verdict.ok else verdict.line())  # a failure reports in full
    assert verdict.ok, verdict.report()
