"""Settings of the 24-hour watch: defaults, overridden per site, zone and resident.

```yaml
watch:
  defaults: {bed_exit_return_min: 30}
  sites:
    sunrise: {timezone: Europe/London, night: {start: "21:30", end: "07:00"}}
  zones:
    sunrise/west: {door_at_night: true}
  residents:
    E-0001: {bed_exit_return_min: 10}
```

The most specific level wins, field by field: resident over zone over site over defaults.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Window(BaseModel):
    """A daily window in the site's local time; it may wrap past midnight (22:00–07:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        now = moment.time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_end(self, moment: datetime) -> datetime:
        """The next time (after `moment`) this window closes."""
        candidate = datetime.combine(moment.date(), self.end, moment.tzinfo)
        return candidate if candidate > moment else candidate + timedelta(days=1)


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float
    max: float
    for_s: float = Field(default=60, gt=0)


class WatchSettings(BaseModel):
    """Every tunable of the watch, fully resolved for one bed, room or device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    night: Window = Window(start=time(22, 0), end=time(7, 0))
    maintenance: bool = False
    bed_exit: bool = True
    bed_exit_return_min: float = Field(default=30, gt=0)
    door_at_night: bool = False
    inactivity: bool = True
    inactivity_hours: float = Field(default=4, gt=0)
    up_by: time | None = time(9, 30)
    bathroom_max_min: float = Field(default=45, gt=0)
    vital_signs: bool = True
    heart_rate: Range = Range(min=40, max=130)
    respiration_rate: Range = Range(min=8, max=30)
    # A breathing rate of 0 while in bed for this long is a breathing pause (docs/watch.md).
    breathing_pause_s: float = Field(default=20, gt=0)
    device_offline: bool = True
    gateway_keepalive_s: float = Field(default=900, gt=0)
    low_battery_remind_h: float = Field(default=4, gt=0)
    # A staffed zone with no armed console this long is a trouble alert (hub/console/presence.py).
    console_grace_s: float = Field(default=60, gt=0, le=3600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/London)") from exc
        return value

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, _zone(self.timezone))

    def is_night(self, at: float) -> bool:
        return self.night.contains(self.local(at))

    def is_day(self, at: float) -> bool:
        return not self.is_night(at)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class WatchConfig(BaseModel):
    """The `watch:` section of the hub configuration: partial settings at each level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    sites: dict[str, dict[str, Any]] = Field(default_factory=dict)
    zones: dict[str, dict[str, Any]] = Field(default_factory=dict)
    residents: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def model_post_init(self, _: Any) -> None:
        for level, entries in (
            ("sites", self.sites),
            ("zones", self.zones),
            ("residents", self.residents),
        ):
            for name, partial in entries.items():
                try:
                    WatchSettings.model_validate({**self.defaults, **partial})
                except ValueError as exc:
                    raise ValueError(f"watch.{level}.{name}: {exc}") from exc
        WatchSettings.model_validate(self.defaults)


class WatchPolicy:
    """Resolves the settings that apply to a place and resident, with a cache."""

    def __init__(self, config: WatchConfig) -> None:
        self._config = config
        self._cache: dict[tuple[str, str | None, str | None], WatchSettings] = {}

    def settings(self, site: str, zone: str | None, resident: str | None) -> WatchSettings:
        key = (site, zone, resident)
        if key not in self._cache:
            self._cache[key] = self._merge(site, zone, resident)
        return self._cache[key]

    def _merge(self, site: str, zone: str | None, resident: str | None) -> WatchSettings:
        config = self._config
        merged: dict[str, Any] = {**config.defaults, **config.sites.get(site, {})}
        if zone is not None:
            merged |= config.zones.get(f"{site}/{zone}", {})
        if resident is not None:
            merged |= config.residents.get(resident, {})
        return WatchSettings.model_validate(merged)
