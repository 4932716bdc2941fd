"""One typed settings object, read once from the environment (``NUDGE_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError

DEV_SECRET = "nudge-dev-secret-change-me"


class Settings(BaseSettings):
    """Every knob of nudge. Field ``foo_bar`` is read from ``NUDGE_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="NUDGE_", env_file=None, extra="ignore")

    # Kafka
    kafka_bootstrap: str = "localhost:9092"
    topic_prefix: str = ""
    partitions: int = Field(default=4, ge=1, description="partitions for `nudge topics create`")
    replication_factor: int = Field(default=1, ge=1)
    app_id: str = "nudge"
    session_timeout_s: float = Field(default=6.0, gt=0)
    connect_timeout_s: float = Field(
        default=30.0, ge=0, description="how long a worker waits for Kafka and Redis to start"
    )
    shutdown_timeout_s: float = Field(
        default=15.0, gt=0, description="how long SIGTERM may take to stop a worker"
    )
    max_payload_bytes: int = Field(default=64 * 1024, gt=0)
    batch_max_records: int = Field(
        default=20_000,
        ge=1,
        description="records the stream worker folds in one batch at most",
    )
    fetch_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        description="input bytes a worker fetches per partition at once (bounds its memory)",
    )

    # Stream worker
    store: str = "memory://"
    state_cache: int = Field(
        default=100_000, ge=1, description="customers kept decoded with rocksdb://"
    )
    data_dir: Path = Path(".nudge")
    state_horizon: float = Field(
        default=180 * 86400.0,
        ge=0,
        description="customers inactive longer keep only what flows need (0: keep all)",
    )
    timer_tick_s: float = Field(
        default=0.1, gt=0, description="retry interval of a due timer that could not fire"
    )
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    public_url: str = "http://localhost:6066"
    log_level: str = "WARNING"

    # Redis
    redis_url: str | None = None
    redis_namespace: str = Field(default="nudge", description="prefix of every Redis key")

    # SMTP and mail identity
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_pool_size: int = Field(default=8, ge=1)
    mail_from: str = "Nudge Demo Shop <shop@example.com>"
    postal_address: str = "Nudge Demo Shop, 1 Example Street, Springfield, 00000"
    # DKIM: all three or none (checked by ``delivery.dkim.DkimSigner.from_settings``).
    dkim_domain: str | None = Field(default=None, description="d= of DKIM signatures")
    dkim_selector: str | None = Field(default=None, description="s=: <s>._domainkey.<d>")
    # A str, not a Path: an empty value (compose's ${VAR:-}) must read as unset, not ".".
    dkim_key_file: str | None = Field(default=None, description="PEM RSA private key")

    # Delivery
    delivery_web_port: int = 6067
    delivery_concurrency: int = Field(default=64, ge=1)
    # Transient failures are retried (off the partition, through the deferred queue)
    # until this long after the first one; seconds, or an ISO 8601 duration like P2D.
    # Kept in seconds so that ``as_env`` writes a value that reads back the same.
    send_retry_for: float = Field(default=2 * 86400.0, gt=0, description="retry window, s")
    send_backoff_s: float = Field(default=0.5, ge=0, description="first retry's backoff step")
    send_backoff_max_s: float = Field(default=600.0, ge=0, description="cap of the backoff")
    # What to do when a send was interrupted after DATA began and nobody knows whether
    # the server took it: "skip" reports it failed (never twice), "resend" sends again
    # (never lost, maybe twice).
    uncertain_policy: Literal["skip", "resend"] = "skip"
    smart_sending: float = Field(
        default=12 * 3600.0,
        ge=0,
        description="a marketing flow mails a customer at most once per window, s",
    )
    frequency_cap_per_day: int = Field(default=0, ge=0, description="0 disables the cap")
    cap_hold: float = Field(
        default=120.0,
        ge=0,
        description="under the cap, messages within this of each other compete by priority, s",
    )
    quiet_hours: str = Field(default="", description="e.g. '22-8' in the customer's timezone")

    # Recommendations
    model_dir: Path | None = Field(
        default=None, description="an item-similarity model from `nudge train`; else popular"
    )

    # Links
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    unsubscribe_ttl_days: int = Field(default=180, ge=1)
    utm_source: str = "nudge"
    utm_medium: str = "email"
    shop_url: str = Field(
        default="https://shop.example.com", description="storefront base URL for email buttons"
    )

    @field_validator("send_retry_for", "smart_sending", "cap_hold", "state_horizon", mode="before")
    @classmethod
    def _duration_s(cls, value: Any) -> float:
        try:
            return parse_duration_ms(value) / 1000
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def as_env(self) -> dict[str, str]:
        """These settings as ``NUDGE_*`` variables, for a child process to read back."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"NUDGE_{name.upper()}"] = str(value)
        return env
