"""The simulated devices of a resident scenario: what each supported profile sends for each
action, and what the serial radars keep reporting between steps.

Every profile in device_profiles/ has a model here (`MODELS`). A model says which actions it
can send where it is bound (`can`), whether a value fits what it can encode (`value_problem`),
and builds the byte-exact frames or adverts (`frames`, `background`) from the simulators'
builders: MicRadar (simulators/mr60bha1.py, mr60fda1.py), TinyFrame (simulators/tinyframe.py),
LD2410 (simulators/ld2410.py), BTHome v2 (simulators/bthome.py) and MiBeacon
(simulators/xiaomi.py), all of them checked against shared/reference/device-protocols.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from simulators import bthome, ld2410, mr60bha1, mr60fda1, tinyframe, xiaomi

Place = Literal["bed", "bedroom", "bathroom", "exit"]
BATTERY: Final = 90  # % in every BLE advert unless the scenario says otherwise
TINYFRAME_MAX_ID: Final = 0x7FFF  # radar frame ids stay below 0x8000 (the host's range)


@dataclass
class ResidentState:
    """The resident as the devices see them."""

    in_bed: bool | None = None
    active: bool = False
    in_bathroom: bool = False
    heart_rate: float = 64
    respiration_rate: float = 15


# --- values -------------------------------------------------------------------------------


def _u8(value: float) -> str | None:
    if value != int(value) or not 0 <= value <= 255:
        return "a whole number from 0 to 255 (one byte)"
    return None


def _f32(value: float) -> str | None:
    return None if math.isfinite(value) else "a finite number (a 32-bit float)"


def _percent(value: float) -> str | None:
    if value != int(value) or not 0 <= value <= 100:
        return "a whole percentage from 0 to 100"
    return None


ValueCheck = Callable[[float], str | None]
Actions = dict[str, ValueCheck | None]  # action -> its value's check (None: takes no value)
Placed = dict[str, frozenset[str]]  # action -> the places it is sent from (default: anywhere)


class SimDevice:
    """One simulated device. Subclasses set PROFILE and their actions."""

    PROFILE: ClassVar[str]
    SERIAL: ClassVar[bool] = False
    FIRST: ClassVar[bool] = False  # sends before the other devices of a step (a door contact)
    ACTIONS: ClassVar[Actions] = {}
    PLACED: ClassVar[Placed] = {}

    def __init__(self, place: Place, battery: int = BATTERY) -> None:
        self.place = place
        self.battery = battery

    @classmethod
    def can(cls, action: str, place: str) -> bool:
        return action in cls.ACTIONS and place in cls.PLACED.get(action, {place})

    @classmethod
    def value_problem(cls, action: str, value: float) -> str | None:
        check = cls.ACTIONS.get(action)
        return check(value) if check is not None else None

    @classmethod
    def takes_value(cls, action: str) -> bool:
        return cls.ACTIONS.get(action) is not None

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        raise NotImplementedError

    def background(self, state: ResidentState) -> list[bytes]:
        """What a serial device reports between steps (BLE devices send on change only)."""
        return []


def _number(value: float | None) -> float:
    if value is None:
        raise RuntimeError("this action needs a value")
    return value


# --- serial radars ------------------------------------------------------------------------

_BED: Final = frozenset({"bed"})
_BATHROOM: Final = frozenset({"bathroom"})


def _moving(frames: dict[str, bytes], state: ResidentState) -> bytes:
    return frames["moving" if state.active else "stationary"]


class MR60BHA1(SimDevice):
    PROFILE = "seeed-mr60bha1"
    SERIAL = True
    ACTIONS: ClassVar[Actions] = {
        "in_bed": None,
        "out_of_bed": None,
        "heart_rate": _u8,
        "respiration_rate": _u8,
    }
    PLACED: ClassVar[Placed] = {"in_bed": _BED, "out_of_bed": _BED}

    def _vitals(self, state: ResidentState) -> list[bytes]:
        return [
            mr60bha1.heart_rate(int(state.heart_rate)),
            mr60bha1.breathing_rate(int(state.respiration_rate)),
        ]

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action == "in_bed":
            return [mr60bha1.FRAMES["in_bed"], *self._vitals(state)]
        if action == "out_of_bed":
            return [mr60bha1.FRAMES["out_of_bed"], mr60bha1.FRAMES["moving"]]
        if not state.in_bed:
            return []  # the radar reports rates only while someone is in bed
        rate = int(_number(value))
        if action == "heart_rate":
            return [mr60bha1.heart_rate(rate)]
        return [mr60bha1.breathing_rate(rate)]

    def background(self, state: ResidentState) -> list[bytes]:
        return self._vitals(state) if state.in_bed else [_moving(mr60bha1.FRAMES, state)]


class _TinyFrameDevice(SimDevice):
    SERIAL = True

    def __init__(self, place: Place, battery: int = BATTERY) -> None:
        super().__init__(place, battery)
        self._frame_id = 0

    def next_id(self) -> int:
        """The radar's frame sequence (below 0x8000, the host's range)."""
        self._frame_id = self._frame_id % TINYFRAME_MAX_ID + 1
        return self._frame_id


class MR60BHA2(_TinyFrameDevice):
    """Mounted over the bed: its presence is the bed's in-bed reading."""

    PROFILE = "seeed-mr60bha2"
    ACTIONS: ClassVar[Actions] = {
        "in_bed": None,
        "out_of_bed": None,
        "heart_rate": _f32,
        "respiration_rate": _f32,
    }
    PLACED: ClassVar[Placed] = {"in_bed": _BED, "out_of_bed": _BED}

    def _vitals(self, state: ResidentState) -> list[bytes]:
        return [
            tinyframe.breathing(self.next_id(), state.respiration_rate),
            tinyframe.heart_rate(self.next_id(), state.heart_rate),
        ]

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action in {"in_bed", "out_of_bed"}:
            present = [tinyframe.presence(self.next_id(), action == "in_bed")]
            return present + (self._vitals(state) if action == "in_bed" else [])
        if not state.in_bed:
            return []
        if action == "heart_rate":
            return [tinyframe.heart_rate(self.next_id(), _number(value))]
        return [tinyframe.breathing(self.next_id(), _number(value))]

    def background(self, state: ResidentState) -> list[bytes]:
        present = tinyframe.presence(self.next_id(), bool(state.in_bed))
        return [present, *self._vitals(state)] if state.in_bed else [present]


class MR60FDA1(SimDevice):
    PROFILE = "seeed-mr60fda1"
    SERIAL = True
    ACTIONS: ClassVar[Actions] = {"fall": None, "fall_clear": None}

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        return [mr60fda1.FRAMES["fall" if action == "fall" else "fall_cleared"]]

    def background(self, state: ResidentState) -> list[bytes]:
        return [_moving(mr60fda1.FRAMES, state)]


class MR60FDA2(_TinyFrameDevice):
    PROFILE = "seeed-mr60fda2"
    ACTIONS: ClassVar[Actions] = {"fall": None, "fall_clear": None}

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        return [tinyframe.fall(self.next_id(), action == "fall")]

    def background(self, state: ResidentState) -> list[bytes]:
        """Human present: the resident is in the room unless in the bathroom."""
        return [tinyframe.presence(self.next_id(), not state.in_bathroom)]


class LD2410(SimDevice):
    """In the bathroom it sees the resident there; elsewhere, in the bedroom."""

    PROFILE = "hlk-ld2410"
    SERIAL = True
    ACTIONS: ClassVar[Actions] = {"bathroom_enter": None, "bathroom_leave": None}
    PLACED: ClassVar[Placed] = {"bathroom_enter": _BATHROOM, "bathroom_leave": _BATHROOM}

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        return [ld2410.FRAMES["moving" if action == "bathroom_enter" else "nobody"]]

    def background(self, state: ResidentState) -> list[bytes]:
        here = state.in_bathroom if self.place == "bathroom" else not state.in_bathroom
        return [_moving(ld2410.FRAMES, state) if here else ld2410.FRAMES["nobody"]]


# --- BLE devices --------------------------------------------------------------------------


class _BLEDevice(SimDevice):
    def __init__(self, place: Place, battery: int = BATTERY) -> None:
        super().__init__(place, battery)
        self._packet = 0

    def next_packet(self) -> int:
        """The advert's packet id (BTHome) or frame counter (MiBeacon): receivers drop repeats."""
        self._packet = (self._packet + 1) % 256
        return self._packet


class _BinaryBTHome(_BLEDevice):
    """A BTHome v2 sensor with one binary object; `battery` re-sends its state."""

    ON: ClassVar[str]
    OFF: ClassVar[str]
    BUILD: ClassVar[Callable[[int, bool, int], bytes]]

    def __init__(self, place: Place, battery: int = BATTERY) -> None:
        super().__init__(place, battery)
        self.on = False

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action == "battery":
            self.battery = int(_number(value))
        elif action in {self.ON, self.OFF}:
            self.on = action == self.ON
        else:
            return self.bathroom(action)
        return [type(self).BUILD(self.next_packet(), self.on, self.battery)]

    def advert(self, on: bool) -> bytes:
        self.on = on
        return type(self).BUILD(self.next_packet(), on, self.battery)

    def bathroom(self, action: str) -> list[bytes]:
        raise NotImplementedError


def _bthome_smoke(packet: int, on: bool, battery: int) -> bytes:
    return bthome.smoke(packet, on, battery)


def _bthome_door(packet: int, on: bool, battery: int) -> bytes:
    return bthome.door_window(packet, on, battery)


def _bthome_motion(packet: int, on: bool, battery: int) -> bytes:
    return bthome.motion(packet, on, battery)


class BTHomeSmoke(_BinaryBTHome):
    PROFILE = "bthome-smoke"
    ACTIONS: ClassVar[Actions] = {"smoke": None, "smoke_clear": None, "battery": _percent}
    ON, OFF = "smoke", "smoke_clear"
    BUILD = _bthome_smoke


class DoorWindow(_BinaryBTHome):
    """A door contact. On the bathroom door, going in or out opens and closes it."""

    PROFILE = "shelly-blu-door-window"
    ACTIONS: ClassVar[Actions] = {
        "door_open": None,
        "door_closed": None,
        "battery": _percent,
        "bathroom_enter": None,
        "bathroom_leave": None,
    }
    PLACED: ClassVar[Placed] = {"bathroom_enter": _BATHROOM, "bathroom_leave": _BATHROOM}
    ON, OFF = "door_open", "door_closed"
    FIRST = True  # the door opens before the motion sensor sees anyone come in
    BUILD = _bthome_door

    def bathroom(self, action: str) -> list[bytes]:
        return [self.advert(True), self.advert(False)]


class BLUMotion(_BinaryBTHome):
    """A PIR sensor. In the bathroom it sees the resident come in; after they leave it
    reports "no motion" (its blind time is not simulated)."""

    PROFILE = "shelly-blu-motion"
    ACTIONS: ClassVar[Actions] = {
        "motion_detected": None,
        "no_motion": None,
        "battery": _percent,
        "bathroom_enter": None,
        "bathroom_leave": None,
    }
    PLACED: ClassVar[Placed] = {"bathroom_enter": _BATHROOM, "bathroom_leave": _BATHROOM}
    ON, OFF = "motion_detected", "no_motion"
    BUILD = _bthome_motion

    def bathroom(self, action: str) -> list[bytes]:
        return [self.advert(action == "bathroom_enter")]


class BLUButton(_BLEDevice):
    PROFILE = "shelly-blu-button1"
    ACTIONS: ClassVar[Actions] = {"call_button": None, "battery": _percent}

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action == "battery":  # a beacon: button object 0x00, "no press"
            self.battery = int(_number(value))
            return [bthome.button_press(self.next_packet(), self.battery, "none")]
        return [bthome.button_press(self.next_packet(), self.battery)]


class _MiBeacon(_BLEDevice):
    """A plaintext MiBeacon v5 device (the agent is given no bindkey for it). Its frames
    leave the MAC out: the receiver takes the advert's address."""

    PRODUCT: ClassVar[int]
    OBJECT: ClassVar[int]

    def _advert(self, objects: list[xiaomi.MiObject]) -> bytes:
        counter = self.next_packet()
        data = xiaomi.service_data(
            self.PRODUCT, counter, objects, mac="00:00:00:00:00:00", include_mac=False
        )
        return xiaomi.advert(data)

    def binary(self, on: bool) -> bytes:
        return self._advert([(self.OBJECT, bytes([int(on)]))])

    def battery_advert(self, level: float | None) -> bytes:
        self.battery = int(_number(level))
        return self._advert([(xiaomi.BATTERY, bytes([self.battery]))])


class PS1BB(_MiBeacon):
    """A pressure mat under the mattress: bound to the bed, it says in bed or not."""

    PROFILE = "linptech-ps1bb"
    ACTIONS: ClassVar[Actions] = {"in_bed": None, "out_of_bed": None, "battery": _percent}
    PLACED: ClassVar[Placed] = {"in_bed": _BED, "out_of_bed": _BED}
    PRODUCT = xiaomi.PS1BB
    OBJECT = xiaomi.PRESSURE_PRESENT

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action == "battery":
            return [self.battery_advert(value)]
        return [self.binary(action == "in_bed")]


class JTYJGD03MI(_MiBeacon):
    PROFILE = "xiaomi-jtyjgd03mi"
    ACTIONS: ClassVar[Actions] = {"smoke": None, "smoke_clear": None, "battery": _percent}
    PRODUCT = xiaomi.JTYJGD03MI
    OBJECT = xiaomi.SMOKE

    def frames(self, action: str, value: float | None, state: ResidentState) -> list[bytes]:
        if action == "battery":
            return [self.battery_advert(value)]
        return [self.binary(action == "smoke")]


MODELS: Final[dict[str, type[SimDevice]]] = {
    model.PROFILE: model
    for model in (
        MR60BHA1,
        MR60BHA2,
        MR60FDA1,
        MR60FDA2,
        LD2410,
        BTHomeSmoke,
        DoorWindow,
        BLUMotion,
        BLUButton,
        PS1BB,
        JTYJGD03MI,
    )
}
