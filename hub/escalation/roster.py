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

Two more settings serve the roster view and the uncovered-zone alarm (`hub.escalation.roster_watch`,
`hub.escalation.roster_routes`): `push_confirm_within_h` (top level, default 24: a phone that has
not confirmed a push for longer is not counted as reachable) and, per site, `unstaffed_zones`
(zones no staff are meant to cover, such as family beds at home: never an uncovered-zone
alarm).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.watch.settings import WatchPolicy

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

    def occurrences(self, moment: datetime, before: int = 1, after: int = 8) -> Iterator[Run]:
        """Every run of this shift that starts from `before` days before `moment`'s day to
        `after` days after it, in order (local, aware times)."""
        for offset in range(-before, after + 1):
            day = moment.date() + timedelta(days=offset)
            if DAYS[day.weekday()] in self.days:
                yield Run(self, self._begin(day, moment), self._finish(day, moment))

    def _begin(self, day: date, moment: datetime) -> datetime:
        return datetime.combine(day, self.start, moment.tzinfo)

    def _finish(self, day: date, moment: datetime) -> datetime:
        overnight = self.end <= self.start
        return datetime.combine(day + timedelta(days=int(overnight)), self.end, moment.tzinfo)

    def people(self) -> Iterable[Username]:
        yield from (a.user for a in self.assignments)
        if self.charge_nurse is not None:
            yield self.charge_nurse


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a shift: Friday's night shift, from Friday 19:00 to Saturday 07:00."""

    shift: Shift
    begin: datetime
    end: datetime

    @property
    def start_at(self) -> float:
        return self.begin.timestamp()

    @property
    def end_at(self) -> float:
        return self.end.timestamp()


class SiteRoster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shifts: tuple[Shift, ...] = ()
    # Zones that no staff are meant to cover (family beds at home): no uncovered-zone alarm.
    unstaffed_zones: tuple[str, ...] = ()

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
    # A phone that has not confirmed a push for longer than this is shown as not reachable.
    push_confirm_within_h: float = Field(default=24, gt=0, le=24 * 365)

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

    @property
    def config(self) -> RosterConfig:
        return self._config

    def sites(self) -> list[str]:
        """The sites that have a roster, in the order written."""
        return list(self._config.sites)

    def site(self, site: str) -> SiteRoster | None:
        return self._config.sites.get(site)

    def shifts_at(self, site: str, at: float) -> list[Shift]:
        roster = self._config.sites.get(site)
        if roster is None:
            return []
        moment = self._policy.settings(site, None, None).local(at)
        return [shift for shift in roster.shifts if shift.covers(moment)]

    def _runs(self, site: str, at: float) -> list[Run]:
        roster = self._config.sites.get(site)
        if roster is None:
            return []
        moment = self._policy.settings(site, None, None).local(at)
        return [run for shift in roster.shifts for run in shift.occurrences(moment)]

    def running(self, site: str, at: float) -> list[Run]:
        """The runs of the shifts on at `at`, in the order the shifts are listed."""
        return [run for run in self._runs(site, at) if run.start_at <= at < run.end_at]

    def next_runs(self, site: str, at: float) -> list[Run]:
        """The shifts that start next after `at` (all of them, when several start together)."""
        later = [run for run in self._runs(site, at) if run.start_at > at]
        if not later:
            return []
        first = min(run.start_at for run in later)
        return [run for run in later if run.start_at == first]

    def next_change(self, site: str, at: float) -> float | None:
        """The next moment after `at` when a shift of the site starts or ends."""
        moments = [
            moment
            for run in self._runs(site, at)
            for moment in (run.start_at, run.end_at)
            if moment > at
        ]
        return min(moments) if moments else None

    def is_charge_nurse(self, site: str, user: Username) -> bool:
        """Whether `user` is the charge nurse of any shift of the site's roster."""
        roster = self._config.sites.get(site)
        return roster is not None and any(s.charge_nurse == user for s in roster.shifts)

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
