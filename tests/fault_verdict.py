"""Counting emails per recipient, and the verdict: nothing lost, nothing twice.

Every intended message goes to its own customer, so "exactly once" is "exactly one
email per expected recipient, none to anyone who must get none". A verdict carries what
a failing run needs to be understood: which customers lost or duplicated, what the
pipeline knows about each (changelog cart? send commands? delivery events?), the
problems found on the way (offsets ahead of effects, a worker that died by itself,
health that never said what it waited for), the rig's timeline and the logs' tails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from tests.fault_shop import email_of
from tests.fault_support import Rig
from tests.fault_topics import ended_without_mail, read_effects, uncertain_commands
from tests.pipeline_support import wait_for

MAX_DIAGNOSED = 12


class MailLog:
    """The caught messages' recipients, read incrementally from MailCatcher's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: dict[str, str] = {}  # file name -> recipient
        self._parser = BytesHeaderParser(policy=default_policy)

    def refresh(self) -> Counter[str]:
        for path in self.folder.glob("*.eml"):
            if path.name not in self._seen:
                with path.open("rb") as fh:
                    headers = self._parser.parse(fh)
                self._seen[path.name] = str(headers["To"] or "")
        return Counter(self._seen.values())

    @property
    def total(self) -> int:
        return len(self._seen)


def settle(
    rig: Rig,
    mail: MailLog,
    expected: set[str],
    *,
    deadline_s: float,
    quiet_s: float = 4.0,
    give_up_after_s: float = 60.0,
) -> bool:
    """Wait until every expected customer got mail or a final outcome without one (a
    ``failed`` or ``suppressed`` delivery event: waiting longer would change nothing),
    then until no mail came for ``quiet_s`` (a duplicate would land meanwhile).

    Gives up at ``deadline_s``, or sooner when neither mail nor final outcomes moved
    for ``give_up_after_s`` (longer than any retry backoff the scenario provokes).
    False if it gave up."""
    addresses = {email_of(cid): cid for cid in expected}
    ended = _EndedWithoutMail(rig)
    progress = {"seen": -1, "at": time.monotonic()}

    def done_or_stuck() -> bool:
        counts = mail.refresh()
        missing = {cid for a, cid in addresses.items() if a not in counts}
        finished = ended.customers()
        if not missing or missing <= finished:
            return True
        seen = mail.total + len(finished)
        if seen != progress["seen"]:
            progress.update(seen=seen, at=time.monotonic())
        return time.monotonic() - progress["at"] > give_up_after_s

    reached = True
    try:
        wait_for(done_or_stuck, f"an email to each of {len(addresses)} customers", deadline_s)
    except AssertionError:
        reached = False
        rig.note(f"deadline of {deadline_s:.0f}s passed with mail missing")
    missing = [cid for a, cid in addresses.items() if a not in mail.refresh()]
    if reached and missing and not set(missing) <= ended.customers():
        reached = False
        rig.note(f"gave up: nothing moved for {give_up_after_s:.0f}s, mail still missing")
    quiet = max(quiet_s, rig.delay_s + 2)
    last_total, last_change = mail.total, time.monotonic()
    cap = time.monotonic() + 60
    while time.monotonic() - last_change < quiet and time.monotonic() < cap:
        time.sleep(0.5)
        mail.refresh()
        if mail.total != last_total:
            last_total, last_change = mail.total, time.monotonic()
    rig.note(f"settled: {mail.total} emails caught")
    return reached


class _EndedWithoutMail:
    """Customers with a ``failed`` or ``suppressed`` delivery event, re-read at most
    every few seconds (reading the topic takes a second or so)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self._ended: set[str] = set()
        self._next = 0.0

    def customers(self) -> set[str]:
        if time.monotonic() >= self._next:
            self._ended = ended_without_mail(self.rig.settings)
            self._next = time.monotonic() + 4.0
        return self._ended


@dataclass
class Verdict:
    scenario: str
    seed: int
    intended: int
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    forbidden: dict[str, int] = field(default_factory=dict)  # sent to who must get none
    uncertain: int = 0
    uncertain_tolerated: bool = False
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    logs: str = ""

    @property
    def extra_emails(self) -> int:
        return sum(n - 1 for n in self.duplicated.values())

    @property
    def ok(self) -> bool:
        if self.forbidden or self.problems:
            return False
        wrong = len(self.lost) + self.extra_emails
        return wrong <= self.uncertain if self.uncertain_tolerated else wrong == 0

    def line(self) -> str:
        text = (
            f"{self.scenario}: {self.intended} intended, {len(self.lost)} lost, "
            f"{self.extra_emails} duplicate emails ({len(self.duplicated)} customers)"
        )
        if self.forbidden:
            text += f", {sum(self.forbidden.values())} sent to customers who must get none"
        if self.uncertain or self.uncertain_tolerated:
            text += f", {self.uncertain} reported uncertain"
        if self.problems:
            text += f", {len(self.problems)} other problems"
        return text + ("" if self.ok else "  <-- FAILED") + f" [seed {self.seed}]"

    def report(self) -> str:
        parts = [self.line()]
        if self.uncertain_tolerated:
            parts.append("  (allowed: lost + duplicates <= outcomes reported uncertain)")
        for title, lines in (
            ("problems", self.problems),
            ("facts", self.facts),
            ("lost, duplicated or unwanted customers", self.diagnosis),
            ("timeline", self.timeline),
        ):
            if lines:
                parts.append(f"{title}:")
                parts += [f"  {line}" for line in lines]
        if self.logs:
            parts.append("logs (tails):\n" + self.logs)
        return "\n".join(parts)


def judge(
    rig: Rig,
    mail: MailLog,
    expected: set[str],
    *,
    forbidden: Iterable[str] = (),
    problems: list[str] | None = None,
    facts: list[str] | None = None,
    uncertain_tolerated: bool = False,
) -> Verdict:
    counts = mail.refresh()
    forbidden = set(forbidden)
    verdict = Verdict(
        scenario=rig.name,
        seed=rig.env.seed,
        intended=len(expected),
        lost=sorted(c for c in expected if counts[email_of(c)] == 0),
        duplicated={c: counts[email_of(c)] for c in sorted(expected) if counts[email_of(c)] > 1},
        forbidden={c: counts[email_of(c)] for c in sorted(forbidden) if counts[email_of(c)]},
        uncertain_tolerated=uncertain_tolerated,
        problems=[*(problems or []), *rig.unexpected_exits()],
        facts=list(facts or []),
        timeline=list(rig.timeline),
    )
    strays = set(counts) - {email_of(c) for c in expected | forbidden}
    if strays:
        verdict.problems.append(f"mail to addresses nobody planned: {sorted(strays)[:5]}")
    uncertain = uncertain_commands(rig.settings)
    verdict.uncertain = len(uncertain)
    unreported = sorted({*verdict.lost, *verdict.duplicated} - set(uncertain.values()))
    if uncertain_tolerated and unreported:
        verdict.facts.append(f"lost or duplicated without an uncertain report: {unreported[:8]}")
    wrong = [*verdict.lost, *verdict.duplicated, *verdict.forbidden]
    if wrong:
        verdict.diagnosis = diagnose(rig, wrong, counts)
    if not verdict.ok:
        verdict.logs = rig.logs_tail()
    return verdict


def diagnose(rig: Rig, customers: list[str], counts: Counter[str]) -> list[str]:
    """For each wrong customer: what the changelog, send-commands and delivery-events hold."""
    effects = read_effects(rig.settings, full=True)
    lines = []
    for cid in customers[:MAX_DIAGNOSED]:
        lines.append(
            f"{cid}: {counts[email_of(cid)]} emails; inputs "
            f"{effects.inputs.get(cid) or 'NONE'}; changelog cart "
            f"{'yes' if cid in effects.carts else 'NO'}, profile "
            f"{'yes' if cid in effects.profiles else 'NO'} (last state: "
            f"{effects.latest.get(cid, 'none')}); send commands "
            f"{effects.commands.get(cid) or 'NONE'}; delivery events "
            f"{effects.events.get(cid) or 'NONE'}"
            + (f"; dead letters {effects.dead_letters[cid]}" if cid in effects.dead_letters else "")
        )
    if len(customers) > MAX_DIAGNOSED:
        lines.append(f"... and {len(customers) - MAX_DIAGNOSED} more")
    return lines
