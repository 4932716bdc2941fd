"""Prometheus metrics of one stream worker, in its own registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "nudge_events_total", "Input records processed", ["topic"], registry=self.registry
        )
        self.dead_letters = Counter(
            "nudge_dead_letters_total",
            "Input records sent to dead-letter",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.commands = Counter(
            "nudge_send_commands_total",
            "Send commands emitted",
            ["kind", "step"],
            registry=self.registry,
        )
        self.runs_ended = Counter(
            "nudge_flow_runs_ended_total",
            "Flow runs that ended without their message, by reason (no_consent, filter, "
            "smart_sending, control_group, condition_failed, ...)",
            ["flow", "reason"],
            registry=self.registry,
        )
        self.resubscriptions_ignored = Counter(
            "nudge_resubscriptions_ignored_total",
            "Upserts that asked to undo an opt-out without newer evidence (consent_ts and "
            "consent_source), and were not followed",
            registry=self.registry,
        )
        self.timer_lag = Histogram(
            "nudge_timer_lag_seconds",
            "Due time to command emitted",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 30, 300),
            registry=self.registry,
        )
        self.pending_timers = Gauge(
            "nudge_pending_timers",
            "Customers with an armed timer on this worker",
            registry=self.registry,
        )
        self.replays = Counter(
            "nudge_partition_replays_total",
            "Partitions sought back because a fetched record was not applied",
            registry=self.registry,
        )
        self.catalog_signals = Counter(
            "nudge_catalog_signals_total",
            "Customers told of a price drop or a return to stock (one per change and customer)",
            registry=self.registry,
        )
        self.trigger_rejections = Counter(
            "nudge_trigger_rejections_total", "Trigger definitions rejected", registry=self.registry
        )
