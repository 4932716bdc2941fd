"""A customer row as a ``customers`` upsert.

Fields (after ``--map``): customer_id, email, phone, first_name, last_name, timezone,
consent_email, consent_sms, tags, orders_count. Without a customer_id the normalised
email is the id. Consent values: subscribed / unsubscribed / pending, or yes/no,
true/false, 1/0, y/n, opt-in/opt-out. ``attributes.tags`` is a comma-separated string
(the schema allows only scalar attribute values): the file's own ``tags`` (split on
``,;|``), "Subscriber" when any channel is subscribed else "Contact", "Buyer" when
``orders_count`` > 0, and every ``--tag``. Other non-empty columns become attributes.
Whether a customer is *new* is for the stream worker to decide, not the importer;
``--existing`` marks every record ``historical: true`` (customers the shop already
has), so that importing them starts no welcome flow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from nudge.imports.emails import normalise_email, normalise_phone
from nudge.imports.errors import RowError
from nudge.imports.tabular import pick

FIELDS = frozenset(
    {
        "customer_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "timezone",
        "consent_email",
        "consent_sms",
        "tags",
        "orders_count",
    }
)
_CONSENT = {
    **dict.fromkeys(("subscribed", "yes", "y", "true", "1", "opt-in", "opted-in"), "subscribed"),
    **dict.fromkeys(("unsubscribed", "no", "n", "false", "0", "opt-out"), "unsubscribed"),
    "pending": "pending",
}
_SCALARS = (str, int, float, bool)


def consent_value(raw: Any, channel: str) -> str | None:
    if raw is None or raw == "":
        return None
    value = _CONSENT.get(str(raw).strip().lower())
    if value is None:
        raise RowError(f"bad consent_{channel} {raw!r:.40}")
    return value


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown timezone {raw!r:.40}") from None
    return raw


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSONL may nest consent as ``{"consent": {"email": ...}}``: the CSV column names."""
    consent = data.get("consent")
    if not isinstance(consent, dict):
        return dict(data)
    flat = {k: v for k, v in data.items() if k != "consent"}
    for channel, value in consent.items():
        flat.setdefault(f"consent_{channel}", value)
    return flat


def customer_event(
    data: Mapping[str, Any],
    mapping: Mapping[str, str],
    source_tags: tuple[str, ...],
    ts: int,
    *,
    historical: bool = False,
) -> dict[str, Any]:
    row = _flatten(data)
    event: dict[str, Any] = {}
    email = pick(row, mapping, "email")
    if email is not None:
        event["email"] = normalise_email(str(email))
    customer_id = pick(row, mapping, "customer_id")
    customer_id = str(customer_id).strip() if customer_id is not None else event.get("email")
    if not customer_id:
        raise RowError("missing customer_id and email")
    phone = pick(row, mapping, "phone")
    if phone is not None:
        event["phone"] = normalise_phone(str(phone))
    for name in ("first_name", "last_name"):
        value = pick(row, mapping, name)
        if value is not None:
            event[name] = str(value)
    tz = pick(row, mapping, "timezone")
    if tz is not None:
        event["timezone"] = _timezone(str(tz))
    consent = {
        ch: v
        for ch in ("email", "sms")
        if (v := consent_value(pick(row, mapping, f"consent_{ch}"), ch)) is not None
    }
    if consent:
        event["consent"] = consent
    attributes = _attributes(row, mapping)
    attributes["tags"] = ",".join(_tags(row, mapping, consent, source_tags))
    event["attributes"] = attributes
    # The id hashes what the row says (not when it was read), so a re-run of the same
    # file repeats its event ids and downstream de-duplication can drop it.
    digest = hashlib.blake2b(
        orjson.dumps([customer_id, event], option=orjson.OPT_SORT_KEYS), digest_size=12
    )
    record = {"event_id": f"import-{digest.hexdigest()}", "customer_id": customer_id, "ts": ts}
    if historical:
        record["historical"] = True
    return {**record, **event}


def _tags(
    row: Mapping[str, Any],
    mapping: Mapping[str, str],
    consent: Mapping[str, str],
    source_tags: tuple[str, ...],
) -> list[str]:
    raw = pick(row, mapping, "tags")
    if isinstance(raw, list):
        given = [str(t).strip() for t in raw]
    else:
        given = str(raw or "").replace(";", ",").replace("|", ",").split(",")
    tags = {t.strip() for t in given if t.strip()}
    tags.add("Subscriber" if "subscribed" in consent.values() else "Contact")
    orders = pick(row, mapping, "orders_count")
    try:
        if orders is not None and float(orders) > 0:
            tags.add("Buyer")
    except (TypeError, ValueError):
        raise RowError(f"bad orders_count {orders!r:.40}") from None
    tags.update(t for t in source_tags if t)
    return sorted(tags)


def _attributes(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    used = set(FIELDS) | set(mapping.values())
    attributes: dict[str, Any] = {}
    extra = row.get("attributes")
    for key, value in [*(extra.items() if isinstance(extra, dict) else ()), *row.items()]:
        if key in used or key == "attributes" or value is None or value == "":
            continue
        # Attribute values must be JSON scalars (schema): anything else is kept as JSON.
        attributes[key] = value if isinstance(value, _SCALARS) else orjson.dumps(value).decode()
    return attributes
