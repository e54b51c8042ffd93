"""Resident scenarios: a night or a day of one resident, in YAML, played through the simulators.

```yaml
name: Up in the night and not back in bed
start: "2026-11-22T21:30:00"     # the site's local time, no offset
timezone: Europe/London
speed: 600                       # simulated seconds per wall-clock second
bed: SR-E-101
resident: {code: E-0001, name: Mary Jones, watch: {bed_exit_return_min: 20}}
watch: {door_at_night: true}     # the site's watch settings (hub/watch_settings.py)
timeline:
  - {at: "22:00", do: in_bed}
  - {at: "03:10", do: out_of_bed}
  - {at: "03:15", do: heart_rate, value: 150}
  - {at: "03:20", do: door_open, device: exit-door}
end: "04:00"                     # default: the last step
expect: {alerts: [bed_exit], no_alerts: [inactivity]}
```

Times are local times of day; each means its first occurrence at or after `start`, so a timeline
spans at most 24 hours and its steps are listed in time order. Every action becomes byte-exact
frames or adverts of one simulated device (ACTIONS), and between steps the serial radars keep
reporting what they would see (BACKGROUND) at half their supervision window, so that a device is
silent only when a scenario makes it so.

`run_scenario` walks the timeline on any `Clock` (the hub's ScaledClock in practice) and sends
through `Sender`s: the pseudo-terminals and BLE air of simulators/scenario_world.py, or a
recorder in tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from device_profiles import DeviceProfile, load_profile
from edge.config import Identifier, validate_document
from hub.clock import Clock
from hub.registry_models import BedCode, ElderCode
from hub.watch_settings import WatchSettings
from simulators import bthome, ld2410, mr60bha1, mr60fda1

log = logging.getLogger("carewatch.scenario")

SCENARIOS: Final = Path(__file__).with_name("scenarios")
BATTERY: Final = 90  # % in every BLE advert
LATE_WARNING_S: Final = 60.0  # simulated seconds a step may run behind its time unremarked
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

DeviceKindName = Literal[
    "bed_radar", "fall_radar", "bathroom_radar", "call_button", "smoke_detector", "exit_door"
]
Place = Literal["bed", "bedroom", "bathroom", "exit"]


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A kind of simulated device: its profile, where it is bound, its id unless named."""

    profile: str
    place: Place
    default_id: str
    role: str | None = None

    @property
    def device_profile(self) -> DeviceProfile:
        return load_profile(self.profile)


DEVICE_KINDS: Final[dict[str, DeviceKind]] = {
    "bed_radar": DeviceKind("seeed-mr60bha1", "bed", "bed-radar"),
    "fall_radar": DeviceKind("seeed-mr60fda1", "bed", "fall-radar"),
    "bathroom_radar": DeviceKind("hlk-ld2410", "bathroom", "bathroom-radar"),
    "call_button": DeviceKind("shelly-blu-button1", "bed", "call-button"),
    "smoke_detector": DeviceKind("bthome-smoke", "bedroom", "smoke-detector"),
    "exit_door": DeviceKind("shelly-blu-door-window", "exit", "exit-door", role="exit_door"),
}


class Sender(Protocol):
    """Where a simulated device's frames or adverts go."""

    def send(self, frame: bytes) -> None: ...


# --- the resident, as the devices see them ----------------------------------------------


@dataclass
class ResidentState:
    in_bed: bool | None = None
    active: bool = False
    in_bathroom: bool = False
    heart_rate: int = 64
    respiration_rate: int = 15


def _moving(frames: Mapping[str, bytes], state: ResidentState) -> bytes:
    return frames["moving" if state.active else "stationary"]


def _vitals(state: ResidentState) -> list[bytes]:
    return [mr60bha1.heart_rate(state.heart_rate), mr60bha1.breathing_rate(state.respiration_rate)]


def _bed_radar_background(state: ResidentState) -> list[bytes]:
    return _vitals(state) if state.in_bed else [_moving(mr60bha1.FRAMES, state)]


def _bathroom_background(state: ResidentState) -> list[bytes]:
    return [_moving(ld2410.FRAMES, state) if state.in_bathroom else ld2410.FRAMES["nobody"]]


# What a serial radar reports between steps. BLE devices send on change only (their
# supervision windows are over a day long).
BACKGROUND: Final[dict[str, Callable[[ResidentState], list[bytes]]]] = {
    "bed_radar": _bed_radar_background,
    "fall_radar": lambda state: [_moving(mr60fda1.FRAMES, state)],
    "bathroom_radar": _bathroom_background,
}

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
    value: int | None = None
    device: Identifier | None = None

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

    @model_validator(mode="after")
    def _value_if_needed(self) -> Step:
        needs = ACTIONS[self.do].value
        if needs is None and self.value is not None:
            raise ValueError(f"{self.do} takes no value")
        if needs is not None and (self.value is None or not needs[0] <= self.value <= needs[1]):
            raise ValueError(f"{self.do} needs a value from {needs[0]} to {needs[1]}")
        return self

    def describe(self) -> str:
        value = f" {self.value}" if self.value is not None else ""
        device = f" ({self.device})" if self.device else ""
        return f"{self.do}{value}{device}"


class ResidentSpec(_Strict):
    code: ElderCode = "E-0001"
    name: str = Field(default="Resident", min_length=1, max_length=200)
    watch: dict[str, Any] = Field(default_factory=dict)  # this resident's watch overrides

    @field_validator("watch")
    @classmethod
    def _watch_settings(cls, partial: dict[str, Any]) -> dict[str, Any]:
        WatchSettings.model_validate(partial)
        return partial


class DeviceSpec(_Strict):
    id: Identifier
    kind: DeviceKindName


class Expect(_Strict):
    alerts: list[str] = Field(default_factory=list)  # rules that must raise an alert
    no_alerts: list[str] = Field(default_factory=list)  # rules that must not

    @field_validator("alerts", "no_alerts")
    @classmethod
    def _known_rules(cls, rules: list[str]) -> list[str]:
        unknown = sorted(set(rules) - RULES)
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r}; rules are {', '.join(sorted(RULES))}")
        return rules


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    start: datetime
    timezone: str = "UTC"
    speed: float = Field(default=600, gt=0)
    bed: BedCode = "SR-E-101"
    resident: ResidentSpec = ResidentSpec()
    watch: dict[str, Any] = Field(default_factory=dict)  # the site's watch settings
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
                _check_device(index, step, devices)
        return steps

    @model_validator(mode="after")
    def _end_after_steps(self) -> Scenario:
        if self.end is not None and self.end_at() < self.schedule()[-1][0]:
            raise ValueError(f"end {self.end:%H:%M:%S} comes before the last step")
        return self

    # --- derived ----------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def start_at(self) -> float:
        return self.start.replace(tzinfo=self.zone).timestamp()

    def schedule(self) -> list[tuple[float, Step]]:
        """Each step with its time (Unix seconds)."""
        return [(_occurrence(self.start, self.zone, step.at), step) for step in self.timeline]

    def end_at(self) -> float:
        if self.end is None:
            return self.schedule()[-1][0]
        return _occurrence(self.start, self.zone, self.end)

    @property
    def duration_s(self) -> float:
        """Simulated seconds from start to end."""
        return self.end_at() - self.start_at

    def devices_used(self) -> dict[str, str]:
        """Device id -> kind name: those listed, or one of each kind the timeline needs."""
        return _devices(self.devices, self.timeline)

    def device_for(self, step: Step) -> str | None:
        kind = ACTIONS[step.do].kind
        if step.device is not None or kind is None:
            return step.device
        return next(d for d, k in self.devices_used().items() if k == kind)

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.zone)


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


def _devices(listed: list[DeviceSpec] | None, steps: list[Step]) -> dict[str, str]:
    if listed is not None:
        return {device.id: device.kind for device in listed}
    named = {step.device: kind for step in steps if step.device and (kind := _kind(step))}
    needed = {kind for step in steps if step.device is None and (kind := _kind(step))}
    if "bed_radar" not in named.values():
        needed.add("bed_radar")  # the bed is always watched
    defaults = {DEVICE_KINDS[kind].default_id: kind for kind in DEVICE_KINDS if kind in needed}
    for device, kind in named.items():
        if defaults.get(device, kind) != kind:
            raise ValueError(f"{device} is the {defaults[device]}'s id; name the {kind} otherwise")
    return defaults | named


def _kind(step: Step) -> str | None:
    return ACTIONS[step.do].kind


def _check_device(index: int, step: Step, devices: Mapping[str, str]) -> None:
    kind = ACTIONS[step.do].kind
    where = f"step {index} ({step.at:%H:%M:%S} {step.do})"
    if step.device is None:
        if kind is not None and kind not in devices.values():
            raise ValueError(f"{where}: no {kind} among the scenario's devices")
        return
    if kind is None:
        raise ValueError(f"{where}: {step.do} concerns the resident, not one device")
    if step.device not in devices:
        raise ValueError(
            f"{where}: unknown device {step.device!r}; devices are {', '.join(devices)}"
        )
    if devices[step.device] != kind:
        raise ValueError(
            f"{where}: {step.do} needs a {kind}; {step.device} is a {devices[step.device]}"
        )


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


def unmet_expectations(scenario: Scenario, raised: set[str]) -> list[str]:
    """What the scenario's `expect` says that the alerts raised (their rules) do not bear out."""
    expect = scenario.expect
    return [
        f"expected a {rule} alert; none was raised" for rule in expect.alerts if rule not in raised
    ] + [f"expected no {rule} alert; one was raised" for rule in expect.no_alerts if rule in raised]


# --- the actions --------------------------------------------------------------------------


class _Play:
    """A scenario being played: the resident's state and the devices' senders."""

    def __init__(self, scenario: Scenario, senders: Mapping[str, Sender]) -> None:
        self.scenario = scenario
        self.state = ResidentState()
        self._kinds = scenario.devices_used()
        missing = sorted(set(self._kinds) - set(senders))
        if missing:
            raise ValueError(f"no simulated device for {', '.join(missing)}")
        self._senders = senders
        self._packets: dict[str, int] = {}

    def send(self, device: str, *frames: bytes) -> None:
        for frame in frames:
            self._senders[device].send(frame)

    def advert(self, device: str, make: Callable[[int], bytes]) -> None:
        """A BLE advert with the device's next packet id (BTHome drops repeated ids)."""
        packet = self._packets[device] = (self._packets.get(device, 0) + 1) % 256
        self.send(device, make(packet))

    def background_periods(self) -> dict[str, float]:
        """The devices that keep reporting, each with its period (simulated seconds)."""
        return {
            device: DEVICE_KINDS[kind].device_profile.supervision_s / 2
            for device, kind in self._kinds.items()
            if kind in BACKGROUND
        }

    def report(self, device: str) -> None:
        self.send(device, *BACKGROUND[self._kinds[device]](self.state))

    def report_all(self) -> None:
        for device in self.background_periods():
            self.report(device)

    async def keep_reporting(self, device: str, period: float, clock: Clock) -> None:
        due = clock.now()
        while True:  # on a fixed beat, so that the gaps do not grow with the loop's delays
            self.report(device)
            due += period
            await clock.sleep(due - clock.now())

    def apply(self, step: Step) -> None:
        ACTIONS[step.do].run(self, self.scenario.device_for(step), step)


Handler = Callable[[_Play, str | None, Step], None]


def _device(device: str | None) -> str:
    if device is None:
        raise RuntimeError("this action needs a device")
    return device


def _in_bed(play: _Play, device: str | None, step: Step) -> None:
    play.state.in_bed, play.state.active, play.state.in_bathroom = True, False, False
    play.send(_device(device), mr60bha1.FRAMES["in_bed"], *_vitals(play.state))


def _out_of_bed(play: _Play, device: str | None, step: Step) -> None:
    play.state.in_bed, play.state.active = False, True
    play.send(_device(device), mr60bha1.FRAMES["out_of_bed"], mr60bha1.FRAMES["moving"])


def _fall(play: _Play, device: str | None, step: Step) -> None:
    play.state.active = False
    play.send(_device(device), mr60fda1.FRAMES["fall"])


def _activity(active: bool) -> Handler:
    def handler(play: _Play, device: str | None, step: Step) -> None:
        play.state.active = active
        play.report_all()

    return handler


def _bathroom(inside: bool) -> Handler:
    def handler(play: _Play, device: str | None, step: Step) -> None:
        play.state.in_bathroom = inside
        play.state.active = play.state.active or inside
        play.send(_device(device), ld2410.FRAMES["moving" if inside else "nobody"])

    return handler


def _value(step: Step) -> int:
    if step.value is None:
        raise RuntimeError(f"{step.do} needs a value")
    return step.value


def _heart_rate(play: _Play, device: str | None, step: Step) -> None:
    play.state.heart_rate = _value(step)
    if play.state.in_bed:
        play.send(_device(device), mr60bha1.heart_rate(play.state.heart_rate))


def _respiration_rate(play: _Play, device: str | None, step: Step) -> None:
    play.state.respiration_rate = _value(step)
    if play.state.in_bed:
        play.send(_device(device), mr60bha1.breathing_rate(play.state.respiration_rate))


def _call_button(play: _Play, device: str | None, step: Step) -> None:
    play.advert(_device(device), lambda packet: bthome.button_press(packet, BATTERY))


def _smoke(detected: bool) -> Handler:
    def handler(play: _Play, device: str | None, step: Step) -> None:
        play.advert(_device(device), lambda packet: bthome.smoke(packet, detected, BATTERY))

    return handler


def _door(is_open: bool) -> Handler:
    def handler(play: _Play, device: str | None, step: Step) -> None:
        play.advert(_device(device), lambda packet: bthome.door_window(packet, is_open, BATTERY))

    return handler


@dataclass(frozen=True, slots=True)
class Action:
    kind: str | None  # the kind of device that reports it; None: the resident's state
    run: Handler
    summary: str
    value: tuple[int, int] | None = None  # the allowed range, if the action takes a value


ACTIONS: Final[dict[str, Action]] = {
    "in_bed": Action("bed_radar", _in_bed, "84 01 01 in bed, then heart and breathing rates"),
    "out_of_bed": Action("bed_radar", _out_of_bed, "84 01 00 out of bed, 80 02 02 moving"),
    "fall": Action("fall_radar", _fall, "83 01 01 fall; the resident then lies still"),
    "motion": Action(None, _activity(True), "the resident moves: radars report 80 02 02"),
    "no_movement": Action(None, _activity(False), "the resident is still: no activity"),
    "bathroom_enter": Action("bathroom_radar", _bathroom(True), "LD2410 moving target"),
    "bathroom_leave": Action("bathroom_radar", _bathroom(False), "LD2410 no target"),
    "heart_rate": Action("bed_radar", _heart_rate, "85 02 bpm (sent while in bed)", (1, 255)),
    "respiration_rate": Action(
        "bed_radar", _respiration_rate, "81 02 breaths/min (sent while in bed)", (1, 255)
    ),
    "call_button": Action("call_button", _call_button, "BTHome button press advert"),
    "smoke": Action("smoke_detector", _smoke(True), "BTHome smoke detected advert"),
    "smoke_clear": Action("smoke_detector", _smoke(False), "BTHome smoke cleared advert"),
    "door_open": Action("exit_door", _door(True), "Shelly BLU Door/Window open advert"),
    "door_closed": Action("exit_door", _door(False), "Shelly BLU Door/Window closed advert"),
}

# --- running ------------------------------------------------------------------------------

StepListener = Callable[[float, Step], None]


async def run_scenario(
    scenario: Scenario,
    devices: Mapping[str, Sender],
    clock: Clock,
    on_step: StepListener | None = None,
) -> None:
    """Walk the timeline on `clock`, sending each step through `devices` (device id -> sender),
    with the radars' background reports in between; return at the scenario's end. `on_step`
    hears of each step as it is sent, with its time in the timeline."""
    play = _Play(scenario, devices)
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
            play.apply(step)
            if on_step is not None:
                on_step(at, step)
        await clock.sleep(scenario.end_at() - clock.now())
    finally:
        for task in reporters:
            task.cancel()
        await asyncio.gather(*reporters, return_exceptions=True)
