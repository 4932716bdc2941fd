"""``{inactivity: {for: P30D}}``: no storefront activity and no order for that long."""

from __future__ import annotations

from pydantic import Field

from flows.fields import Duration, Strict


class InactivitySpec(Strict):
    for_: Duration = Field(alias="for")


class InactivityTrigger(Strict):
    inactivity: InactivitySpec
