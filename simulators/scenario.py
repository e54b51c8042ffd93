"""Resident scenarios: a night or a day of one resident, in YAML, played through the simulators.

```yaml
name: Up in the night and not back in bed
start: "2026-11-22T21:30:00"     # the site's local time, no offset
timezone: Europe/London
speed: 600                       # simulated seconds per wall-clock second
bed: SR-E-101
resident: {code: E-0001, name: Mary Jones, flags: [wander_risk], watch: {bed_exit_return_min: 20}}
watch: {door_at_night: true}     # the site's watch settings (hub/watch/settings.py)
zone: {kind: dementia, watch: {bathroom_max_min: 30}}
devices:
  - {id: bed-radar, profile: seeed-mr60bha2, place: bed}
  - {id: room-door, profile: shelly-blu-door-window, place: bedroom, role: exit_door}
  - {id: fall-radar, kind: fall_radar}                # a shorthand: seeed-mr60fda1 on the bed
roster:
  - {name: night, start: "19:00", end: "07:00", assignments: [{user: nurse-amy}]}
timeline:
  - {at: "22:00", do: in_bed}
  - {at: "03:10", do: out_of_bed}
  - {at: "03:15", do: respiration_rate, value: 0}
  - {at: "03:20", do: network_down}
  - {at: "03:30", do: network_up}
  - {at: "03:41", do: acknowledge, rule: bed_exit, by: nurse-amy}
end: "04:00"                     # default: the last step
expect:
  alerts: [{rule: bed_exit, sensed: ["03:40", "03:41"], told: [{user: nurse-amy}]}]
  no_alerts: [inactivity]
  bed: {in_bed: false}
```

Times are local times of day; each means its first occurrence at or after `start`, so a timeline
spans at most 24 hours and its steps are listed in time order. A device action becomes
byte-exact frames or adverts of the simulated devices that can send it (simulators/
scenario_devices.py); between steps the serial radars keep reporting what they would see at half
their supervision window, so that a device is silent only when a scenario makes it so. World
actions (network, unplugging, a hub restart, a person acknowledging) go to the `World` the
runner is given (simulators/scenario_world.py plays them on the real agent and hub).

`run_scenario` walks the timeline on any `Clock` (the hub's ScaledClock in practice) and sends
through `Sender`s: the pseudo-terminals and BLE air of simulators/scenario_world.py, or a
recorder in tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from contract.wire import Identifier
from contract.yaml_documents import validate_document
from device_profiles import load_profile
from hub.core.clock import Clock
from hub.escalation.policy import EscalationConfig
from hub.escalation.roster import RosterConfig, Shift
from hub.registry.models import BedCode, DeviceRole, ElderCode, RiskFlag, Username, ZoneKind
from hub.watch.settings import WatchSettings
from simulators.scenario_devices import BATTERY, MODELS, Place, ResidentState, SimDevice

log = logging.getLogger("carewatch.scenario")

SCENARIOS: Final = Path(__file__).with_name("scenarios")
LATE_WARNING_S: Final = 60.0  # simulated seconds a step may run behind its time unremarked
SITE: Final = "home"
ZONE: Final = "ward"
RULES: Final = frozenset(
    {
        "fall",
        "call_button",
        "smoke",
        "bed_exit",
        "door_at_night",
        "inactivity",
        "not_up",
        "prolonged_stay",
        "vital_signs",
        "device_offline",
        "gateway_offline",
        "low_battery",
        "tamper",
    }
)
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")

# --- devices ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    """A simulated device's profile and where it is bound (a bed or a room, maybe a role)."""

    profile: str
    place: Place
    role: DeviceRole | None = None
    battery: int = BATTERY

    @property
    def model(self) -> type[SimDevice]:
        return MODELS[self.profile]

    @property
    def serial(self) -> bool:
        return self.model.SERIAL


DeviceKindName = Literal[
    "bed_radar", "fall_radar", "bathroom_radar", "call_button", "smoke_detector", "exit_door"
]


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A shorthand of the first scenario format: a profile bound somewhere, its id unless named."""

    default_id: str
    bound: Bound


DEVICE_KINDS: Final[dict[str, DeviceKind]] = {
    "bed_radar": DeviceKind("bed-radar", Bound("seeed-mr60bha1", "bed")),
    "fall_radar": DeviceKind("fall-radar", Bound("seeed-mr60fda1", "bed")),
    "bathroom_radar": DeviceKind("bathroom-radar", Bound("hlk-ld2410", "bathroom")),
    "call_button": DeviceKind("call-button", Bound("shelly-blu-button1", "bed")),
    "smoke_detector": DeviceKind("smoke-detector", Bound("bthome-smoke", "bedroom")),
    "exit_door": DeviceKind("exit-door", Bound("shelly-blu-door-window", "exit", "exit_door")),
}


class Sender(Protocol):
    """Where a simulated device's frames or adverts go."""

    def send(self, frame: bytes) -> None: ...


class World(Protocol):
    """Where a world action (network, unplugging, a hub restart, a person) is played."""

    async def event(self, step: Step) -> None: ...


# --- the actions --------------------------------------------------------------------------

Scope = Literal["device", "every", "resident", "world"]


@dataclass(frozen=True, slots=True)
class Action:
    """`device`: one device sends it (the only one that can, or the one named); `every`: every
    device that can; `resident`: the resident's state, which the radars then report; `world`:
    an event of the world. `kind`: the device kind added for it when `devices:` is not listed."""

    scope: Scope
    summary: str
    kind: DeviceKindName | None = None
    value: bool = False  # needs a value (checked against what each device can encode)
    needs: tuple[str, ...] = ()  # step fields a world action needs: device, by, rule


ACTIONS: Final[dict[str, Action]] = {
    "in_bed": Action("every", "the bed's in-bed sensors: in bed (and the rates)", "bed_radar"),
    "out_of_bed": Action("every", "the bed's in-bed sensors: out of bed", "bed_radar"),
    "heart_rate": Action(
        "every", "the bed radars' heart rate (sent while in bed)", "bed_radar", True
    ),
    "respiration_rate": Action(
        "every", "the bed radars' breathing rate (sent while in bed)", "bed_radar", True
    ),
    "fall": Action("device", "the fall radar: fall; the resident then lies still", "fall_radar"),
    "fall_clear": Action("device", "the fall radar: no fall", "fall_radar"),
    "bathroom_enter": Action(
        "every", "the bathroom's devices see someone come in", "bathroom_radar"
    ),
    "bathroom_leave": Action("every", "the bathroom's devices see them go", "bathroom_radar"),
    "call_button": Action("device", "a call-button press advert", "call_button"),
    "smoke": Action("every", "smoke detected advert", "smoke_detector"),
    "smoke_clear": Action("every", "smoke cleared advert", "smoke_detector"),
    "door_open": Action("device", "a door contact: open", "exit_door"),
    "door_closed": Action("device", "a door contact: closed", "exit_door"),
    "motion_detected": Action("device", "a motion sensor: motion"),
    "no_motion": Action("device", "a motion sensor: no motion"),
    "battery": Action(
        "device", "a BLE device's advert with this battery level from now on", value=True
    ),
    "motion": Action("resident", "the resident moves: the radars report moving"),
    "no_movement": Action("resident", "the resident is still: no activity"),
    "network_down": Action("world", "the gateway's network is cut (the agent keeps running)"),
    "network_up": Action("world", "the gateway's network is back"),
    "unplug": Action("world", "a serial device is unplugged", needs=("device",)),
    "plug": Action("world", "a serial device is plugged back in", needs=("device",)),
    "hub_restart": Action("world", "the hub stops and starts again on the same data"),
    "acknowledge": Action("world", "a person acknowledges the rule's alert", needs=("by", "rule")),
}


def _resident_moves(state: ResidentState, do: str, value: float | None) -> None:
    """How an action changes what the devices see of the resident (before they report it)."""
    if do == "in_bed":
        state.in_bed, state.active, state.in_bathroom = True, False, False
    elif do == "out_of_bed":
        state.in_bed, state.active = False, True
    elif do == "fall" or do == "no_movement":
        state.active = False
    elif do == "motion":
        state.active = True
    elif do == "bathroom_enter":
        state.in_bathroom, state.active = True, True
    elif do == "bathroom_leave":
        state.in_bathroom = False
    elif do == "heart_rate" and value is not None:
        state.heart_rate = value
    elif do == "respiration_rate" and value is not None:
        state.respiration_rate = value


# --- the format ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _time_of_day(value: Any) -> time:
    if not isinstance(value, str):
        raise ValueError(
            f'give a time of day in quotes, like "22:00" (YAML reads {value!r} unquoted)'
        )
    match = _TIME_OF_DAY.match(value.strip())
    if match is None:
        raise ValueError(f'{value!r} is not a time of day like "03:10" or "03:10:30"')
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


class Step(_Strict):
    at: time
    do: str
    value: float | None = None
    device: Identifier | None = None
    by: Username | None = None  # acknowledge: the person
    rule: str | None = None  # acknowledge: the rule of the alert

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> time:
        return _time_of_day(value)

    @field_validator("do")
    @classmethod
    def _known_action(cls, name: str) -> str:
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r}; use one of: {', '.join(ACTIONS)}")
        return name

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str | None) -> str | None:
        if rule is not None and rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(sorted(RULES))}")
        return rule

    @model_validator(mode="after")
    def _fields_it_needs(self) -> Step:
        action = ACTIONS[self.do]
        if action.value and self.value is None:
            raise ValueError(f"{self.do} needs a value")
        if not action.value and self.value is not None:
            raise ValueError(f"{self.do} takes no value")
        for name in ("by", "rule"):
            given = getattr(self, name) is not None
            if given != (name in action.needs):
                raise ValueError(f"{self.do} {'takes no' if given else 'needs a'} {name!r}")
        if action.scope in {"resident", "world"} and self.device is not None:
            if "device" not in action.needs:
                raise ValueError(f"{self.do} concerns the resident or the world, not one device")
        elif "device" in action.needs and self.device is None:
            raise ValueError(f"{self.do} needs a device")
        return self

    def describe(self) -> str:
        value = f" {self.value:g}" if self.value is not None else ""
        device = f" ({self.device})" if self.device else ""
        who = f" {self.rule} by {self.by}" if self.by else ""
        return f"{self.do}{value}{device}{who}"


class ResidentSpec(_Strict):
    code: ElderCode = "E-0001"
    name: str = Field(default="Resident", min_length=1, max_length=200)
    flags: list[RiskFlag] = Field(default_factory=list)  # e.g. wander_risk
    watch: dict[str, Any] = Field(default_factory=dict)  # this resident's watch overrides

    @field_validator("watch")
    @classmethod
    def _watch_settings(cls, partial: dict[str, Any]) -> dict[str, Any]:
        WatchSettings.model_validate(partial)
        return partial


class ZoneSpec(_Strict):
    """The resident's zone (`ward`): its kind and its watch settings."""

    kind: ZoneKind = "care_home"
    watch: dict[str, Any] = Field(default_factory=dict)

    @field_validator("watch")
    @classmethod
    def _watch_settings(cls, partial: dict[str, Any]) -> dict[str, Any]:
        WatchSettings.model_validate(partial)
        return partial


class DeviceSpec(_Strict):
    """A device: a `kind` (shorthand), or a `profile` and the `place` it is bound to."""

    id: Identifier
    kind: DeviceKindName | None = None
    profile: str | None = None
    place: Place | None = None
    role: DeviceRole | None = None
    battery: int = Field(default=BATTERY, ge=0, le=100)  # % in its adverts, until a step says

    @field_validator("profile")
    @classmethod
    def _supported(cls, profile: str | None) -> str | None:
        if profile is not None and profile not in MODELS:
            raise ValueError(
                f"no simulated device for profile {profile!r}; profiles: {', '.join(MODELS)}"
            )
        if profile is not None:
            load_profile(profile)
        return profile

    @model_validator(mode="after")
    def _kind_or_profile(self) -> DeviceSpec:
        if (self.kind is None) == (self.profile is None):
            raise ValueError("give a device either a kind or a profile and a place")
        if self.kind is not None and (self.place or self.role):
            raise ValueError(f"a {self.kind} is bound where its kind says; give no place or role")
        if self.profile is not None and self.place is None:
            raise ValueError("say where the device is bound: place bed, bedroom, bathroom or exit")
        return self

    def bound(self) -> Bound:
        if self.kind is not None:
            kind = DEVICE_KINDS[self.kind].bound
            return Bound(kind.profile, kind.place, kind.role, self.battery)
        assert self.profile is not None and self.place is not None  # the validator says so
        return Bound(self.profile, self.place, self.role, self.battery)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of local time of day: `first` to `last`, a whole minute or second each."""

    first: time
    last: time
    unit_s: int

    def text(self) -> str:
        fmt = "%H:%M" if self.unit_s == 60 else "%H:%M:%S"
        if self.first == self.last:
            return self.first.strftime(fmt)
        return f"{self.first.strftime(fmt)}-{self.last.strftime(fmt)}"


def _span(value: Any) -> Span:
    """ "03:40" (that minute), "03:40:10" (that second) or ["03:40", "03:41"] (both minutes)."""
    bounds = value if isinstance(value, list) else [value]
    if len(bounds) not in {1, 2}:
        raise ValueError('give a time, or a list of two: ["03:40", "03:41"]')
    times = [_time_of_day(bound) for bound in bounds]
    with_seconds = any(str(bound).count(":") == 2 for bound in bounds)
    return Span(times[0], times[-1], 1 if with_seconds else 60)


class Told(_Strict):
    """Someone the escalation reached (delivered), by a channel if named."""

    user: Username
    channel: Literal["console", "push", "apprise"] | None = None


class AlertExpectation(_Strict):
    """What an alert of `rule` must look like; `count`: how many alerts of the rule."""

    rule: str
    device: Identifier | None = None  # only the alerts about this device
    count: int | None = Field(default=None, ge=0)
    sensed: Span | None = None  # when its condition arose (local time)
    opened: Span | None = None  # when the hub raised it
    priority: Literal["emergency", "routine", "trouble"] | None = None
    late: bool | None = None  # marked late (a replayed backlog, a slow path)
    triggered: int | None = Field(default=None, ge=1)  # times raised: 1 + its repeats
    cleared: bool | None = None  # its condition is over by the end
    acknowledged_by: Username | None = None
    told: list[Told] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)  # these keys of its opening detail

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(sorted(RULES))}")
        return rule

    @field_validator("sensed", "opened", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Span | None:
        return None if value is None else _span(value)

    def checks(self) -> list[str]:
        """What this expectation asks of one alert, in words."""
        asked = {
            "sensed": self.sensed and self.sensed.text(),
            "opened": self.opened and self.opened.text(),
            "priority": self.priority,
            "late": self.late,
            "triggered": self.triggered,
            "cleared": self.cleared,
            "acknowledged by": self.acknowledged_by,
            "told": ", ".join(_told_text(t.user, t.channel) for t in self.told) or None,
            "detail": self.detail or None,
        }
        return [f"{name} {value}" for name, value in asked.items() if value is not None]


class BedExpectation(_Strict):
    """The bed's live state at the end, as the bed board and family app show it."""

    in_bed: bool | None = None
    state: Literal["in_bed", "up", "away", "device_trouble", "unknown"] | None = None


def _rule_or_expectation(value: Any) -> Any:
    return {"rule": value} if isinstance(value, str) else value


class Expect(_Strict):
    alerts: list[AlertExpectation] = Field(default_factory=list)  # rules that must alert
    no_alerts: list[str] = Field(default_factory=list)  # rules that must not
    bed: BedExpectation | None = None

    @field_validator("alerts", mode="before")
    @classmethod
    def _rule_names(cls, items: Any) -> Any:
        return [_rule_or_expectation(item) for item in items] if isinstance(items, list) else items

    @field_validator("no_alerts")
    @classmethod
    def _known_rules(cls, rules: list[str]) -> list[str]:
        unknown = sorted(set(rules) - RULES)
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r}; rules are {', '.join(sorted(RULES))}")
        return rules

    @property
    def given(self) -> bool:
        return bool(self.alerts or self.no_alerts or self.bed)


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    start: datetime
    timezone: str = "UTC"
    speed: float = Field(default=600, gt=0)
    bed: BedCode = "SR-E-101"
    resident: ResidentSpec = ResidentSpec()
    watch: dict[str, Any] = Field(default_factory=dict)  # the site's watch settings
    zone: ZoneSpec = ZoneSpec()
    staff: list[Username] = Field(default_factory=list)  # hub users beyond the roster's
    # the site's shifts (hub/escalation/roster.py)
    roster: list[Shift] = Field(default_factory=list)
    escalation: dict[str, Any] = Field(default_factory=dict)  # the escalation policy
    devices: list[DeviceSpec] | None = None  # default: one of each kind the timeline uses
    timeline: list[Step] = Field(min_length=1)
    end: time | None = None
    expect: Expect = Expect()

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: Any) -> time | None:
        return None if value is None else _time_of_day(value)

    @field_validator("start")
    @classmethod
    def _local_time(cls, start: datetime) -> datetime:
        if start.tzinfo is not None:
            raise ValueError("give start as the site's local time, without an offset")
        return start

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r} (use e.g. Europe/London)") from exc
        return name

    @field_validator("watch")
    @classmethod
    def _site_settings(cls, partial: dict[str, Any]) -> dict[str, Any]:
        if "timezone" in partial:
            raise ValueError("the site's time zone is the scenario's `timezone`")
        WatchSettings.model_validate(partial)
        return partial

    @field_validator("roster")
    @classmethod
    def _roster(cls, shifts: list[Shift]) -> list[Shift]:
        RosterConfig.model_validate({"sites": {SITE: {"shifts": shifts}}})
        return shifts

    @field_validator("escalation")
    @classmethod
    def _escalation(cls, partial: dict[str, Any]) -> dict[str, Any]:
        EscalationConfig.model_validate({"defaults": partial})
        return partial

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[DeviceSpec] | None) -> list[DeviceSpec] | None:
        ids = [device.id for device in devices or []]
        repeated = sorted({device for device in ids if ids.count(device) > 1})
        if repeated:
            raise ValueError(f"device {repeated[0]!r} is listed twice")
        return devices

    @field_validator("timeline")
    @classmethod
    def _steps_fit(cls, steps: list[Step], info: ValidationInfo) -> list[Step]:
        if {"start", "timezone"} <= info.data.keys():
            _check_order(steps, info.data["start"], info.data["timezone"])
        if "devices" in info.data:
            devices = _devices(info.data["devices"], steps)
            for index, step in enumerate(steps):
                _targets(index, step, devices)
        return steps

    @model_validator(mode="after")
    def _end_after_steps(self) -> Scenario:
        if self.end is not None and self.end_at() < self.schedule()[-1][0]:
            raise ValueError(f"end {self.end:%H:%M:%S} comes before the last step")
        unknown = EscalationConfig.model_validate({"defaults": self.escalation}).unknown_users(
            set(self.people())
        )
        if unknown:
            raise ValueError(f"{unknown[0]}: list them under staff")
        return self

    # --- derived ----------------------------------------------------------------------------

    @property
    def zone_info(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def start_at(self) -> float:
        return self.start.replace(tzinfo=self.zone_info).timestamp()

    def at(self, moment: time) -> float:
        """The first time `moment` comes round, at or after the start (Unix seconds)."""
        return _occurrence(self.start, self.zone_info, moment)

    def schedule(self) -> list[tuple[float, Step]]:
        """Each step with its time (Unix seconds)."""
        return [(self.at(step.at), step) for step in self.timeline]

    def end_at(self) -> float:
        return self.schedule()[-1][0] if self.end is None else self.at(self.end)

    @property
    def duration_s(self) -> float:
        """Simulated seconds from start to end."""
        return self.end_at() - self.start_at

    def devices_used(self) -> dict[str, Bound]:
        """Device id -> where and what: those listed, or one of each kind the timeline needs."""
        return _devices(self.devices, self.timeline)

    def targets(self, step: Step) -> list[str]:
        """The devices a step's frames come from (none for the resident's and world actions)."""
        return _targets(0, step, self.devices_used())

    def people(self) -> list[str]:
        """Everyone the hub must know as a user: the staff, the roster, who acknowledges."""
        named = [*self.staff, *(user for shift in self.roster for user in shift.people())]
        named += [step.by for step in self.timeline if step.by is not None]
        return list(dict.fromkeys(named))

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.zone_info)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _occurrence(start: datetime, zone: ZoneInfo, at: time) -> float:
    """The first time `at` comes round, at or after `start` (local, in `zone`)."""
    moment = datetime.combine(start.date(), at, zone)
    if moment < start.replace(tzinfo=zone):
        moment = datetime.combine(start.date() + timedelta(days=1), at, zone)
    return moment.timestamp()


def _check_order(steps: list[Step], start: datetime, timezone: str) -> None:
    zone = _zone(timezone)
    times = [_occurrence(start, zone, step.at) for step in steps]
    for index in range(1, len(steps)):
        if times[index] < times[index - 1]:
            step, before = steps[index], steps[index - 1]
            raise ValueError(
                f"step {index} ({step.at:%H:%M:%S} {step.do}) comes before step {index - 1} "
                f"({before.at:%H:%M:%S} {before.do}): list steps in time order; each time is "
                f"its first occurrence after start ({start:%Y-%m-%d %H:%M}), so a timeline "
                "spans at most 24 hours"
            )


def _devices(listed: list[DeviceSpec] | None, steps: list[Step]) -> dict[str, Bound]:
    if listed is not None:
        return {device.id: device.bound() for device in listed}
    named = {step.device: kind for step in steps if step.device and (kind := _kind(step))}
    needed = {kind for step in steps if step.device is None and (kind := _kind(step))}
    if "bed_radar" not in named.values():
        needed.add("bed_radar")  # the bed is always watched
    defaults = {DEVICE_KINDS[kind].default_id: kind for kind in DEVICE_KINDS if kind in needed}
    for device, kind in named.items():
        if defaults.get(device, kind) != kind:
            raise ValueError(f"{device} is the {defaults[device]}'s id; name the {kind} otherwise")
    return {device: DEVICE_KINDS[kind].bound for device, kind in (defaults | named).items()}


def _kind(step: Step) -> str | None:
    return ACTIONS[step.do].kind


def _targets(index: int, step: Step, devices: Mapping[str, Bound]) -> list[str]:
    """The devices that send `step`; ValueError naming the step if there are none that can."""
    action = ACTIONS[step.do]
    where = f"step {index} ({step.at:%H:%M:%S} {step.do})"
    if step.device is not None and step.device not in devices:
        raise ValueError(
            f"{where}: unknown device {step.device!r}; devices are {', '.join(devices)}"
        )
    if action.scope in {"resident", "world"}:
        if step.device is not None and step.do in {"unplug", "plug"}:
            if not devices[step.device].serial:
                raise ValueError(f"{where}: {step.device} is not a serial device")
        return []
    able = [d for d, bound in devices.items() if bound.model.can(step.do, bound.place)]
    if step.device is not None:
        if step.device not in able:
            bound = devices[step.device]
            can = f"; devices that can: {', '.join(able)}" if able else ""
            raise ValueError(
                f"{where}: {step.device} ({bound.profile} at {bound.place}) cannot send "
                f"{step.do}{can}"
            )
        chosen = [step.device]
    elif not able:
        raise ValueError(f"{where}: no device among the scenario's devices can send {step.do}")
    elif action.scope == "device" and len(able) > 1:
        raise ValueError(f"{where}: name the device, one of {', '.join(able)}")
    else:
        chosen = able
    for device in chosen:
        problem = step.value is not None and devices[device].model.value_problem(
            step.do, step.value
        )
        if problem:
            raise ValueError(
                f"{where}: {devices[device].profile} cannot send {step.value:g}; give {problem}"
            )
    return chosen


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file. Raises edge.config.ConfigError naming line and field."""
    path = Path(path)
    return parse_scenario(path.read_text(encoding="utf-8"), str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    return validate_document(text, source, Scenario)


def find_scenario(name: str | Path) -> Path:
    """A scenario file by path, or by the name of one shipped in simulators/scenarios/."""
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    return SCENARIOS / f"{name}.yaml"


# --- what happened, against what was expected --------------------------------------------


@dataclass(frozen=True)
class SeenAlert:
    """An alert as the hub kept it, with whom its escalation reached and its opening detail."""

    rule: str
    priority: str
    sensed_at: float
    opened_at: float
    late: bool
    triggered: int
    cleared: bool
    device: str | None = None
    acknowledged_by: str | None = None
    told: tuple[tuple[str | None, str], ...] = ()  # (user, channel) of each delivery
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    alerts: list[SeenAlert]
    in_bed: bool | None = None
    bed_state: str | None = None


def _told_text(user: str | None, channel: str | None) -> str:
    return f"{user}" + (f" by {channel}" if channel else "")


def _within(scenario: Scenario, span: Span, at: float) -> bool:
    first = scenario.at(span.first)
    last = first + (scenario.at(span.last) - scenario.at(span.first)) % 86400
    return first <= at < last + span.unit_s


def _matches(scenario: Scenario, want: AlertExpectation, alert: SeenAlert) -> bool:
    told = set(alert.told)
    return (
        (want.sensed is None or _within(scenario, want.sensed, alert.sensed_at))
        and (want.opened is None or _within(scenario, want.opened, alert.opened_at))
        and want.priority in {None, alert.priority}
        and want.late in {None, alert.late}
        and want.triggered in {None, alert.triggered}
        and want.cleared in {None, alert.cleared}
        and want.acknowledged_by in {None, alert.acknowledged_by}
        and all(
            any(user == t.user and t.channel in {None, channel} for user, channel in told)
            for t in want.told
        )
        and all(alert.detail.get(key) == value for key, value in want.detail.items())
    )


def _facts(scenario: Scenario, alert: SeenAlert) -> str:
    told = ", ".join(_told_text(user, channel) for user, channel in alert.told) or "nobody"
    return (
        f"sensed {scenario.local(alert.sensed_at):%H:%M:%S}, opened "
        f"{scenario.local(alert.opened_at):%H:%M:%S}, {alert.priority}, "
        f"{'late' if alert.late else 'not late'}, triggered {alert.triggered}, "
        f"{'cleared' if alert.cleared else 'not cleared'}, acknowledged by "
        f"{alert.acknowledged_by or 'nobody'}, told {told}, detail {dict(alert.detail)}"
    )


def unmet_expectations(scenario: Scenario, outcome: Outcome) -> list[str]:
    """What the scenario's `expect` says that the outcome does not bear out."""
    expect = scenario.expect
    problems: list[str] = []
    for want in expect.alerts:
        of_rule = [
            a for a in outcome.alerts if a.rule == want.rule and want.device in {None, a.device}
        ]
        about = f" from {want.device}" if want.device else ""
        if want.count is not None and len(of_rule) != want.count:
            problems.append(
                f"expected {want.count} {want.rule} alert(s){about}; {len(of_rule)} raised"
            )
        elif want.count is None and not of_rule:
            problems.append(f"expected a {want.rule} alert{about}; none was raised")
        checks = want.checks()
        if checks and of_rule and not any(_matches(scenario, want, a) for a in of_rule):
            seen = "; ".join(_facts(scenario, a) for a in of_rule)
            problems.append(
                f"expected a {want.rule} alert{about} with {', '.join(checks)}; seen: {seen}"
            )
    raised = {alert.rule for alert in outcome.alerts}
    problems += [
        f"expected no {rule} alert; one was raised" for rule in expect.no_alerts if rule in raised
    ]
    bed = expect.bed
    if bed is not None and bed.in_bed is not None and outcome.in_bed != bed.in_bed:
        problems.append(f"expected the bed to say in_bed {bed.in_bed}; it says {outcome.in_bed}")
    if bed is not None and bed.state is not None and outcome.bed_state != bed.state:
        problems.append(f"expected the bed's state {bed.state}; it is {outcome.bed_state}")
    return problems


# --- running ------------------------------------------------------------------------------


class _Play:
    """A scenario being played: the resident's state and the devices' senders."""

    def __init__(
        self, scenario: Scenario, senders: Mapping[str, Sender], world: World | None
    ) -> None:
        self.scenario = scenario
        self.state = ResidentState()
        self._bound = scenario.devices_used()
        missing = sorted(set(self._bound) - set(senders))
        if missing:
            raise ValueError(f"no simulated device for {', '.join(missing)}")
        self._senders = senders
        self._world = world
        self.devices: dict[str, SimDevice] = {
            device: bound.model(bound.place, bound.battery) for device, bound in self._bound.items()
        }

    def send(self, device: str, frames: list[bytes]) -> None:
        for frame in frames:
            self._senders[device].send(frame)

    def background_periods(self) -> dict[str, float]:
        """The devices that keep reporting, each with its period (simulated seconds)."""
        return {
            device: load_profile(bound.profile).supervision_s / 2
            for device, bound in self._bound.items()
            if bound.serial
        }

    def report(self, device: str) -> None:
        self.send(device, self.devices[device].background(self.state))

    async def keep_reporting(self, device: str, period: float, clock: Clock) -> None:
        due = clock.now()
        while True:  # on a fixed beat, so that the gaps do not grow with the loop's delays
            self.report(device)
            due += period
            await clock.sleep(due - clock.now())

    async def apply(self, step: Step) -> None:
        action = ACTIONS[step.do]
        if action.scope == "world":
            if self._world is None:
                raise RuntimeError(f"{step.do} needs a world to play it in")
            await self._world.event(step)
            return
        _resident_moves(self.state, step.do, step.value)
        if action.scope == "resident":
            for device in self.background_periods():
                self.report(device)
            return
        targets = self.scenario.targets(step)
        for device in sorted(targets, key=lambda d: not self.devices[d].FIRST):
            self.send(device, self.devices[device].frames(step.do, step.value, self.state))


StepListener = Callable[[float, Step], None]


async def run_scenario(
    scenario: Scenario,
    devices: Mapping[str, Sender],
    clock: Clock,
    on_step: StepListener | None = None,
    world: World | None = None,
) -> None:
    """Walk the timeline on `clock`, sending each step through `devices` (device id -> sender),
    with the radars' background reports in between, and world actions to `world`; return at the
    scenario's end. `on_step` hears of each step as it is played, with its time."""
    play = _Play(scenario, devices, world)
    reporters = [
        asyncio.create_task(play.keep_reporting(device, period, clock))
        for device, period in play.background_periods().items()
    ]
    try:
        for at, step in scenario.schedule():
            await clock.sleep(at - clock.now())
            late = clock.now() - at
            if late > LATE_WARNING_S:
                log.warning("step %s ran %.0f s late: too fast a speed?", step.describe(), late)
            await play.apply(step)
            if on_step is not None:
                on_step(at, step)
        await clock.sleep(scenario.end_at() - clock.now())
    finally:
        for task in reporters:
            task.cancel()
        await asyncio.gather(*reporters, return_exceptions=True)
