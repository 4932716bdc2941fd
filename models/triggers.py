"""Trigger definitions, as marketers write them on the ``trigger-config`` topic."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError
from nudge.templating import check_syntax

#: Kinds with detection logic today. Others (welcome, thank_you, ...) plug into the
#: same Pending/timer machinery; see streams/logic/kinds.py.
KINDS = frozenset({"abandoned_cart", "abandoned_view", "abandoned_category", "abandoned_search"})
CHANNELS = frozenset({"email"})
ALGORITHMS = frozenset({"popular", "similar", "personal", "also_bought", "recently_viewed"})


@dataclass(frozen=True, slots=True)
class Message:
    subject: str | None = None
    html: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class FollowUp:
    delay_ms: int
    message: Message


#: ``recommendations.category`` value meaning "the category this message is about".
CURRENT_CATEGORY = "current"


@dataclass(frozen=True, slots=True)
class Recommendations:
    algorithm: str = "popular"
    count: int = 4
    #: for ``popular``: a category id, or ``"current"`` for the message's own category
    #: (the abandoned category, else the category of the message's first product)
    category: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerDef:
    id: str
    kind: str
    enabled: bool
    delay_ms: int
    channel: str
    message: Message
    recommendations: Recommendations | None
    follow_up: FollowUp | None
    version: str
    #: after this long past a command's due time a message is not worth sending any
    #: more: the delivery worker stops retrying it sooner than ``NUDGE_SEND_RETRY_FOR``
    expires_after_ms: int | None = None

    def message_for(self, step: int) -> Message:
        """Step 0 is the first message, step 1 the follow-up."""
        if step == 1 and self.follow_up is not None:
            return self.follow_up.message
        return self.message

    @classmethod
    def from_dict(cls, data: Any) -> TriggerDef:
        """Validate a definition; every problem is a ``ConfigError`` with a reason."""
        if not isinstance(data, dict):
            raise ConfigError("trigger definition must be an object")
        trigger_id = data.get("id")
        if not isinstance(trigger_id, str) or not trigger_id.strip():
            raise ConfigError("trigger needs a non-empty string 'id'")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{trigger_id}: unknown kind {kind!r}; known: {sorted(KINDS)}")
        channel = data.get("channel", "email")
        if channel not in CHANNELS:
            raise ConfigError(f"{trigger_id}: unsupported channel {channel!r}")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{trigger_id}: 'enabled' must be true or false")
        try:
            delay_ms = parse_duration_ms(data.get("delay", "PT1H"))
            message = _message(data, "")
            follow_up = None
            if data.get("follow_up") is not None:
                raw_follow = data["follow_up"]
                if not isinstance(raw_follow, dict):
                    raise ConfigError("'follow_up' must be an object")
                follow_up = FollowUp(
                    parse_duration_ms(raw_follow.get("delay", "P1D")),
                    _message(raw_follow, "follow_up."),
                )
            recommendations = _recommendations(data.get("recommendations"))
            expires_after_ms = None
            if data.get("expires_after") is not None:
                expires_after_ms = parse_duration_ms(data["expires_after"])
                if expires_after_ms <= 0:
                    raise ConfigError("'expires_after' must be a positive duration")
        except ConfigError as exc:
            raise ConfigError(f"{trigger_id}: {exc}") from None
        version = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
        return cls(
            id=trigger_id,
            kind=kind,
            enabled=enabled,
            delay_ms=delay_ms,
            channel=channel,
            message=message,
            recommendations=recommendations,
            follow_up=follow_up,
            version=version,
            expires_after_ms=expires_after_ms,
        )


def _message(data: dict[str, Any], prefix: str) -> Message:
    fields: dict[str, str | None] = {}
    for name in ("subject", "html", "text"):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise ConfigError(f"'{prefix}{name}' must be a string")
            check_syntax(value, prefix + name)
        fields[name] = value
    return Message(**fields)


def _recommendations(raw: Any) -> Recommendations | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("'recommendations' must be an object")
    algorithm = raw.get("algorithm", "popular")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown recommendations algorithm {algorithm!r}")
    count = raw.get("count", 4)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 50:
        raise ConfigError("'recommendations.count' must be an integer from 1 to 50")
    category = raw.get("category")
    if category is not None:
        if not isinstance(category, str | int) or isinstance(category, bool) or not str(category):
            raise ConfigError("'recommendations.category' must be a category id or \"current\"")
        if algorithm != "popular":
            raise ConfigError("'recommendations.category' applies to the popular algorithm")
        category = str(category)
    return Recommendations(algorithm, count, category)


class TriggerSet:
    """An immutable snapshot of the trigger definitions, indexed for the hot path."""

    __slots__ = ("_by_id", "_by_kind")

    def __init__(self, definitions: Iterable[TriggerDef] = ()) -> None:
        self._by_id: dict[str, TriggerDef] = {d.id: d for d in definitions}
        by_kind: dict[str, list[TriggerDef]] = {}
        for definition in self._by_id.values():
            if definition.enabled:
                by_kind.setdefault(definition.kind, []).append(definition)
        self._by_kind = {k: tuple(v) for k, v in by_kind.items()}

    def get(self, trigger_id: str) -> TriggerDef | None:
        return self._by_id.get(trigger_id)

    def of_kind(self, kind: str) -> tuple[TriggerDef, ...]:
        """The enabled triggers of one kind."""
        return self._by_kind.get(kind, ())

    def with_definition(self, definition: TriggerDef) -> TriggerSet:
        merged = dict(self._by_id)
        merged[definition.id] = definition
        return TriggerSet(merged.values())

    def __iter__(self) -> Iterator[TriggerDef]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
