"""One typed settings object, read once from the environment (``NUDGE_*``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nudge.delivery.brand import DEFAULT_BACKGROUND, DEFAULT_PRIMARY, check_colour
from nudge.delivery.i18n import parse_locale
from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError

DEV_SECRET = "nudge-dev-secret-change-me"
# A DNS label, at most 63 characters; a host is labels joined by dots.
_LABEL_TEXT = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LABEL = re.compile(rf"^{_LABEL_TEXT}$")
_HOST = re.compile(rf"{_LABEL_TEXT}(?:\.{_LABEL_TEXT})*\.?")


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

    # Bounces, complaints and mailto unsubscribes (``nudge inbound``)
    bounce_domain: str = Field(
        default="", description="domain of the VERP return path; empty: NUDGE_MAIL_FROM's"
    )
    inbound_host: str = "0.0.0.0"
    inbound_port: int = Field(default=2525, ge=1, le=65535)
    soft_bounce_limit: int = Field(
        default=5, ge=1, description="soft bounces of an address that count as a hard one"
    )

    # Delivery
    delivery_web_port: int = 6067
    demo_image_port: int = Field(
        default=6068, description="`nudge dev --demo`'s product pictures (busy: any free port)"
    )
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

    # Channels beyond email (see delivery/channels): a channel whose settings are unset
    # fails its messages with one line naming the setting instead of stopping the worker.
    http_timeout_s: float = Field(default=10.0, gt=0, description="per HTTP channel request")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret, whsec_<base64>"
    )
    sms_url: str | None = Field(default=None, description="HTTP SMS gateway, JSON POST")
    sms_auth_header: SecretStr | None = Field(
        default=None, description="'Name: value' header sent to the SMS gateway"
    )
    sms_sender: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr | None = None
    telegram_parse_mode: str | None = Field(default=None, description="HTML or MarkdownV2")
    viber_api_url: str = "https://chatapi.viber.com/pa"
    viber_auth_token: SecretStr | None = None
    viber_sender_name: str | None = Field(default=None, description="else NUDGE_MAIL_FROM's name")
    vapid_private_key_file: Path | None = Field(default=None, description="VAPID key (PEM)")
    vapid_subject: str | None = Field(default=None, description="mailto: or https: contact")
    push_ttl_s: int = Field(default=86400, ge=0, description="how long a push service keeps it")

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
    category_url: str = Field(
        default="{shop_url}/category/{id}",
        description="a category's page: {shop_url} and {id} (the feed's category id) filled in",
    )

    # Brand and language of the built-in templates
    brand_name: str = Field(default="", description="shop name; default: NUDGE_MAIL_FROM's name")
    brand_logo_url: str = Field(default="", description="logo image (https); else the name")
    brand_color: str = Field(default=DEFAULT_PRIMARY, description="buttons and links, hex")
    brand_background: str = Field(default=DEFAULT_BACKGROUND, description="around the card, hex")
    default_locale: str = Field(default="en", description="for customers without a locale")

    @field_validator("bounce_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        # It goes into MAIL FROM and a header: a domain name and nothing else.
        if value and (len(value) > 253 or not all(map(_LABEL.match, value.split(".")))):
            raise ValueError("expected a domain name such as bounces.example.com")
        return value.lower()

    # Open and click tracking (see nudge.delivery.tracking)
    tracking_url: str | None = Field(
        default=None, description="base URL of /o/ and /c/; default: public_url"
    )
    redirect_domains: str = Field(
        default="", description="hosts a click may lead to, comma-separated; default: shop_url's"
    )
    track_opens: bool = True
    track_clicks: bool = True

    @field_validator("send_retry_for", "smart_sending", "cap_hold", "state_horizon", mode="before")
    @classmethod
    def _duration_s(cls, value: Any) -> float:
        try:
            return parse_duration_ms(value) / 1000
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("tracking_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("redirect_domains")
    @classmethod
    def _host_names(cls, value: str) -> str:
        for host in value.split(","):
            if host.strip() and not _HOST.fullmatch(host.strip()):
                raise ValueError(f"{host.strip()!r} is not a host name (write shop.example.com)")
        return value

    def tracking_base(self) -> str:
        """Where the open pixel and click redirects are served, without a trailing slash."""
        return (self.tracking_url or self.public_url).rstrip("/")

    def redirect_hosts(self) -> tuple[str, ...]:
        """``redirect_domains`` as lowercase hosts; the shop's own host when empty."""
        hosts = [h.strip().lower().rstrip(".") for h in self.redirect_domains.split(",")]
        listed = tuple(h for h in hosts if h)
        return listed or ((urlsplit(self.shop_url).hostname or "").rstrip("."),)

    @field_validator("brand_color", "brand_background")
    @classmethod
    def _colour(cls, value: str) -> str:
        return check_colour(value.strip())

    @field_validator("brand_logo_url")
    @classmethod
    def _logo(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s) URL of an image")
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        locale = parse_locale(value)
        if locale is None:
            raise ValueError("expected a locale such as en, ru or pt_BR")
        return str(locale)

    @field_validator("category_url")
    @classmethod
    def _category_url(cls, value: str) -> str:
        try:
            value.format(shop_url="", id="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{shop_url}} and {{id}} may be filled in ({exc})") from None
        return value

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
