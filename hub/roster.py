"""Who is on duty when: each site's shifts, who covers which zones, and each shift's charge nurse.

```yaml
roster:
  sites:
    sunrise:
      shifts:
        - name: day
          start: "07:00"
          end: "19:00"
          charge_nurse: sister
          assignments:
            - {user: carer-a, zones: [east]}
            - {user: carer-b, zones: [west]}
        - name: night
          start: "19:00"
          end: "07:00"
          days: [mon, tue, wed, thu, fri, sat, sun]
          charge_nurse: nurse
          assignments:
            - {user: nurse}          # no zones: every zone of the site
```

Times are the site's local time (the watch setting `timezone`). A shift that ends at or before
its start runs past midnight and belongs to the day it starts on: Monday's night shift is
Monday 19:00 to Tuesday 07:00. Shifts may overlap; whoever is on any of them is on duty.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.watch_settings import WatchPolicy

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Username = str


class Assignment(BaseModel):
    """One person on a shift and the zones they cover (none listed: the whole site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: Username = Field(min_length=1)
    zones: tuple[str, ...] = ()

    def covers(self, zone: str | None) -> bool:
        return not self.zones or zone is None or zone in self.zones


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    start: time
    end: time
    days: tuple[Day, ...] = DAYS
    charge_nurse: Username | None = None
    assignments: tuple[Assignment, ...] = ()

    def covers(self, moment: datetime) -> bool:
        """Whether `moment` (local, aware) falls in this shift on one of its days."""
        return any(
            self._begin(day, moment) <= moment < self._finish(day, moment)
            for day in (moment.date(), moment.date() - timedelta(days=1))
            if DAYS[day.weekday()] in self.days
        )

    def _begin(self, day: date, moment: datetime) -> datetime:
        return datetime.combine(day, self.start, moment.tzinfo)

    def _finish(self, day: date, moment: datetime) -> datetime:
        overnight = self.end <= self.start
        return datetime.combine(day + timedelta(days=int(overnight)), self.end, moment.tzinfo)

    def people(self) -> Iterable[Username]:
        yield from (a.user for a in self.assignments)
        if self.charge_nurse is not None:
            yield self.charge_nurse


class SiteRoster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shifts: tuple[Shift, ...] = ()

    @model_validator(mode="after")
    def _names_once(self) -> SiteRoster:
        names = [shift.name for shift in self.shifts]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"shift names must differ; repeated: {', '.join(repeated)}")
        return self


class RosterConfig(BaseModel):
    """The `roster:` section of the hub configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: dict[str, SiteRoster] = Field(default_factory=dict)

    def unknown_users(self, users: set[str]) -> list[str]:
        """Where the roster names someone who is not a hub user."""
        return [
            f"roster.sites.{site} shift {shift.name!r}: no user {user!r}"
            for site, roster in self.sites.items()
            for shift in roster.shifts
            for user in dict.fromkeys(shift.people())
            if user not in users
        ]


class Roster:
    """Answers "who is on duty at this site (and zone) at this moment?"."""

    def __init__(self, config: RosterConfig, policy: WatchPolicy) -> None:
        self._config = config
        self._policy = policy

    def shifts_at(self, site: str, at: float) -> list[Shift]:
        roster = self._config.sites.get(site)
        if roster is None:
            return []
        moment = self._policy.settings(site, None, None).local(at)
        return [shift for shift in roster.shifts if shift.covers(moment)]

    def shift_name(self, site: str, at: float) -> str | None:
        """The first listed shift on duty at `at`: how figures group alerts by shift."""
        shifts = self.shifts_at(site, at)
        return shifts[0].name if shifts else None

    def on_duty(self, site: str, at: float, zone: str | None = None) -> list[Username]:
        """Staff assigned to `zone` (every zone when None) on the shifts on at `at`, in order."""
        return _unique(
            a.user
            for shift in self.shifts_at(site, at)
            for a in shift.assignments
            if a.covers(zone)
        )

    def everyone_on_duty(self, site: str, at: float) -> list[Username]:
        """Every assigned person and charge nurse on duty at the site (smoke)."""
        return _unique(user for shift in self.shifts_at(site, at) for user in shift.people())

    def charge_nurses(self, site: str, at: float) -> list[Username]:
        return _unique(
            shift.charge_nurse
            for shift in self.shifts_at(site, at)
            if shift.charge_nurse is not None
        )


def _unique(names: Iterable[Username]) -> list[Username]:
    return list(dict.fromkeys(names))
