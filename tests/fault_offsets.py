"""No committed offset may run ahead of its durable effects.

Taken right after a stream worker was killed (before it restarts): the group's
committed offsets on ``clickstream`` and ``customers`` say "everything below is done".
For each input record below them, its effect must already be durable:

* a ``cart_add``: the changelog holds a state of that customer with a cart (or an armed
  timer), or a send command for the customer exists;
* a profile (``customers``): the changelog holds a state of that customer with the
  email, and Redis holds the customer's consent (what the delivery worker checks).

Offsets are read *first* and effects after: an effect is never later than the commit
it must precede, so reading effects later can only find more of them, never invent a
violation. In these scenarios each customer has one profile and one cart_add, so an
effect found later cannot belong to some other record of the same customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import redis as sync_redis

from nudge.settings import Settings
from nudge.shared_state import SharedState
from tests.fault_topics import TP, committed_offsets, read_effects, read_records

INPUTS = ("clickstream", "customers")
MAX_EXAMPLES = 8


@dataclass
class OffsetCheck:
    when: str
    committed: dict[TP, int]
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    undecodable: int = 0  # changelog records the codec could not read (counted as effects)

    def line(self) -> str:
        offsets = ", ".join(f"{t}[{p}]={o}" for (t, p), o in sorted(self.committed.items()))
        return (
            f"{self.when}: committed {offsets or 'nothing yet'}; {self.checked} input records "
            f"below, {len(self.violations)} without a durable effect"
            + (f" ({self.undecodable} undecodable states)" if self.undecodable else "")
        )


def group_id(settings: Settings) -> str:
    """The stream workers' consumer group: Faust's app id, which nudge prefixes."""
    return f"{settings.topic_prefix}{settings.app_id}"


def check_committed_effects(settings: Settings, when: str) -> OffsetCheck:
    committed = committed_offsets(settings, group_id(settings), INPUTS)
    check = OffsetCheck(when, committed)
    if not committed:
        return check
    inputs = read_records(settings, INPUTS, below=committed)
    effects = read_effects(settings)
    check.undecodable = effects.undecodable
    carts_below = [m for m in inputs["clickstream"] if _type(m.value()) == "cart_add"]
    profiles_below = list(inputs["customers"])
    check.checked = len(carts_below) + len(profiles_below)

    for msg in carts_below:
        cid = msg.key().decode()
        if cid not in effects.carts and cid not in effects.commands:
            check.violations.append(
                f"clickstream[{msg.partition()}]@{msg.offset()} cart_add of {cid} is below "
                f"committed offset {committed[('clickstream', msg.partition())]}, but the "
                "changelog has no cart for it and there is no send command"
            )
    consent = read_consents(settings, [m.key().decode() for m in profiles_below])
    for msg in profiles_below:
        cid = msg.key().decode()
        missing = []
        if cid not in effects.profiles:
            missing.append("no changelog state with its email")
        if consent.get(cid) is None:
            missing.append("no consent in Redis")
        if missing:
            check.violations.append(
                f"customers[{msg.partition()}]@{msg.offset()} profile of {cid} is below "
                f"committed offset {committed[('customers', msg.partition())]}, but: "
                + ", ".join(missing)
            )
    return check


def summarize(checks: list[OffsetCheck]) -> list[str]:
    """Distinct records committed ahead of their effect, each shown once (the first
    check that found it), after one line per check that found any."""
    lines = [c.line() for c in checks if c.violations]
    first: dict[str, str] = {}
    for check in checks:
        for violation in check.violations:
            first.setdefault(violation.split(" is below ")[0], violation)
    shown = list(first.values())
    lines += [f"  {v}" for v in shown[:MAX_EXAMPLES]]
    if len(shown) > MAX_EXAMPLES:
        lines.append(f"  ... and {len(shown) - MAX_EXAMPLES} more")
    return lines


def distinct_violations(checks: list[OffsetCheck]) -> int:
    return len({v.split(" is below ")[0] for c in checks for v in c.violations})


def _type(raw: bytes | None) -> str | None:
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    return value.get("type") if isinstance(value, dict) else None


def read_consents(settings: Settings, customer_ids: list[str]) -> dict[str, str | None]:
    """Each customer's email consent as Redis holds it now (None: not there)."""
    if not customer_ids:
        return {}
    keys = SharedState(cast(Any, None), settings.redis_namespace)
    client = sync_redis.Redis.from_url(settings.redis_url or "", socket_timeout=10)
    try:
        pipe = client.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hget(keys.consent_key(cid), "email")
        values = pipe.execute()
    finally:
        client.close()
    return {
        cid: raw.decode() if isinstance(raw, bytes) else raw
        for cid, raw in zip(customer_ids, values, strict=True)
    }
