"""Issue 8, delivery side: kill -9 `nudge deliver` with messages in flight to a slow SMTP
server. Stalled before DATA, a resend is safe: nothing may be lost or sent twice.
Stalled inside DATA, the outcome is unknown: whatever is lost or doubled must be among
the outcomes the system reports as uncertain."""

from __future__ import annotations

import pytest

from tests.fault_scenarios_delivery import kills_before_data, kills_inside_data
from tests.fault_support import FaultEnv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.faults,
    pytest.mark.timeout(600),
]


def test_delivery_worker_killed_while_smtp_stalls_before_data(fault_env: FaultEnv) -> None:
    verdict = kills_before_data(fault_env, customers=48, kills=3)
    print(verdict.report() if verdict.ok else verdict.line())  # a failure reports in full
    assert verdict.ok, verdict.report()


def test_delivery_worker_killed_while_smtp_stalls_inside_data(fault_env: FaultEnv) -> None:
    verdict = kills_inside_data(fault_env, customers=40, kills=3)
    print(verdict.report() if verdict.ok else verdict.line())  # a failure reports in full
    assert verdict.ok, verdict.report()
