"""Prometheus metrics of one delivery worker, on a registry it is given (never global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sent = Counter(
            "nudge_delivery_sent",
            "Emails accepted by the SMTP server",
            ["reason"],
            registry=registry,
        )
        self.failed = Counter(
            "nudge_delivery_failed",
            "Send commands that ended failed",
            ["reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            "nudge_delivery_suppressed",
            "Send commands suppressed by policy",
            ["reason"],
            registry=registry,
        )
        self.deferred = Counter(
            "nudge_delivery_deferred",
            "Send commands held back for later",
            ["reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "nudge_delivery_dead_letters",
            "Unusable send commands dead-lettered",
            ["reason"],
            registry=registry,
        )
        self.retries = Counter(
            "nudge_delivery_retries",
            "Transient send failures parked for a later try",
            ["reason"],
            registry=registry,
        )
        self.uncertain = Counter(
            "nudge_delivery_uncertain",
            "Sends interrupted after DATA began (the server may have the message), by "
            "what NUDGE_UNCERTAIN_POLICY did: skipped (reported failed) or resent",
            ["action"],
            registry=registry,
        )
        self.claims_taken_over = Counter(
            "nudge_delivery_claims_taken_over",
            "Lapsed send claims of a crashed or stalled worker taken over, by stage",
            ["stage"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "nudge_delivery_send_seconds",
            "Time for one SMTP transaction",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )

    def count(self, status: str, reason: str) -> None:
        counter = {
            "sent": self.sent,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "deferred": self.deferred,
        }.get(status)
        if counter is not None:
            counter.labels(reason=reason or "ok").inc()
