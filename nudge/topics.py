"""The topic contract, and creating the topics with the right shape."""

from __future__ import annotations

from dataclasses import dataclass

from nudge.settings import Settings

#: Keyed by customer id, and so co-partitioned with the ``customer-state`` table.
CUSTOMER_TOPICS = ("clickstream", "orders", "customers")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False
    co_partitioned: bool = True
    partitions: int | None = None  # None: settings.partitions


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("clickstream"),
    TopicSpec("orders"),
    TopicSpec("customers"),
    TopicSpec("catalog", compacted=True, co_partitioned=False),
    # Keyed by product; co-partitioned with each other and the product-audience table.
    TopicSpec("catalog-changes"),
    TopicSpec("product-interest"),
    # Keyed by customer, like the input topics: the catalogue triggers' fan-out.
    TopicSpec("catalog-signals"),
    # Keyed by seller id: marketplace sellers' contacts, and what the customer side has
    # for them (sales, messages), co-partitioned with the seller-state table.
    TopicSpec("sellers"),
    TopicSpec("seller-messages"),
    TopicSpec("trigger-config", compacted=True, co_partitioned=False, partitions=1),
    # Every version of every flow, keyed "id@version": compaction keeps them all, so
    # runs pinned to a version outlive its compaction on trigger-config.
    TopicSpec("flow-versions", compacted=True, co_partitioned=False, partitions=1),
    TopicSpec("model-updates", compacted=True, co_partitioned=False, partitions=1),
    TopicSpec("send-commands"),
    TopicSpec("delivery-events"),
    # Keyed by customer id: opens, clicks, bounces, complaints, unsubscribes.
    TopicSpec("engagement"),
    TopicSpec("dead-letter"),
)


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create every topic that is missing. Returns ``{topic: "created" | "exists"}``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    from nudge.kafka import client_config

    admin = AdminClient(client_config(settings.kafka_bootstrap))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    result: dict[str, str] = {}
    wanted: list[NewTopic] = []
    for spec in TOPICS:
        name = settings.topic(spec.name)
        if name in existing:
            result[name] = "exists"
            continue
        config = {"cleanup.policy": "compact"} if spec.compacted else {}
        wanted.append(
            NewTopic(
                name,
                num_partitions=spec.partitions or settings.partitions,
                replication_factor=settings.replication_factor,
                config=config,
            )
        )
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
                result[name] = "exists"
    return result
