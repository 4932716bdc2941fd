"""The settings of a command, checked; a failure exits with one line naming the setting."""

from __future__ import annotations

import click

from nudge.settings import DEV_SECRET, Settings
from nudge.startup import (
    StartupError,
    load_settings,
    require_dkim,
    require_free_port,
    require_redis,
    require_topics,
)


def checked_settings(
    *, port_setting: str | None = None, services: bool = False, dkim: bool = False
) -> Settings:
    """The settings, checked for what the command needs; a failure exits with one line."""
    try:
        settings = load_settings()
        if dkim:
            require_dkim(settings)  # before the services: no waiting to hear of a typo
        if port_setting is not None:
            port = getattr(settings, port_setting)
            require_free_port(settings.web_host, port, f"NUDGE_{port_setting.upper()}")
        if services:
            from nudge.topics import TOPICS

            require_redis(settings)
            require_topics(settings, [settings.topic(spec.name) for spec in TOPICS])
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    if services and settings.secret_key.get_secret_value() == DEV_SECRET:
        click.echo(
            "warning: NUDGE_SECRET_KEY is the development default; links are forgeable",
            err=True,
        )
    return settings
