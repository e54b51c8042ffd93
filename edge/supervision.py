"""Device supervision: is each device heard from within its profile's supervision window?

Readers tell the supervisor two things about a device:

- `link(device, up)`: whether the agent can hear it at all: the serial port is open, or the BLE
  scanner is running. A device whose link is down is offline at once.
- `heard(device, rssi)`: a frame or advertisement from it was decoded (a heartbeat that yields no
  observation counts too).

Observations update the last `battery` and `rssi` readings. A device is online while its link is
up and it was heard within its window, counting from when the link came up if it has not been
heard since (after a restart a trigger-based button is not offline until its window has passed).

Every change of a device's online flag calls `on_change` (the agent then publishes the retained
device report); `run()` re-evaluates every device periodically so silence is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from contract.wire import Observation, WireDeviceHealth, encode_devices_report
from edge.logs import ContextLogger, context_logger

Clock = Callable[[], float]
BATTERY_RANGE = (0.0, 100.0)
RSSI_RANGE = (-127, 20)


class DeviceWatch(Protocol):
    """What readers report about their devices (the Supervisor implements it)."""

    def link(self, device: str, up: bool) -> None: ...

    def heard(self, device: str, rssi: int | None = None) -> None: ...


@dataclass(slots=True)
class _Device:
    window_s: float
    log: ContextLogger
    link_up: bool = False
    link_since: float = 0.0
    last_seen: float | None = None
    battery: float | None = None
    rssi: int | None = None
    online: bool = False  # as last evaluated (and reported)

    def evaluate(self, now: float) -> bool:
        if not self.link_up:
            return False
        since = self.link_since if self.last_seen is None else max(self.last_seen, self.link_since)
        return now - since <= self.window_s

    def health(self, device: str) -> WireDeviceHealth:
        return WireDeviceHealth(
            dev=device,
            online=self.online,
            last_seen=None if self.last_seen is None else round(self.last_seen, 3),
            battery=self.battery,
            rssi=self.rssi,
        )


class Supervisor:
    """Last-seen, battery, RSSI and the online flag of every device of one gateway."""

    def __init__(
        self,
        windows: Mapping[str, float],
        *,
        clock: Clock = time.time,
        on_change: Callable[[], None] | None = None,
        log: ContextLogger | None = None,
    ) -> None:
        """`windows` maps each device id to its supervision window in seconds."""
        log = log or context_logger(__name__)
        self._devices = {
            device: _Device(window, log.bind(device=device)) for device, window in windows.items()
        }
        self._clock = clock
        self.on_change = on_change
        self._closed = False

    @property
    def devices(self) -> list[str]:
        return list(self._devices)

    def is_online(self, device: str) -> bool:
        return self._devices[device].online

    def close(self) -> None:
        """The agent is stopping: ports closing now are not devices going offline (the
        gateway's death message says it all), so the last report stands."""
        self._closed = True
        self.on_change = None

    def link(self, device: str, up: bool) -> None:
        """The device's port opened/closed, or the scanner hearing it started/stopped."""
        state = self._devices[device]
        if state.link_up == up or self._closed:
            return
        state.link_up = up
        if up:
            state.link_since = self._clock()
        self._settle(device, state, self._clock())

    def heard(self, device: str, rssi: int | None = None) -> None:
        """A frame or advert from `device` was decoded (with the advert's RSSI, if any)."""
        state = self._devices[device]
        now = self._clock()
        state.last_seen = now
        if rssi is not None and _within(rssi, RSSI_RANGE):
            state.rssi = int(rssi)
        if not state.online:
            self._settle(device, state, now)

    def observe(self, observations: Iterable[Observation]) -> None:
        """Keep the latest `battery` and `rssi` readings."""
        for obs in observations:
            state = self._devices.get(obs.device)
            if state is None or obs.kind != "reading" or not _numeric(obs.value):
                continue
            assert isinstance(obs.value, int | float)
            if obs.name == "battery" and _within(obs.value, BATTERY_RANGE):
                state.battery = float(obs.value)
            elif obs.name == "rssi" and _within(obs.value, RSSI_RANGE):
                state.rssi = round(obs.value)

    def check(self) -> bool:
        """Re-evaluate every device; True (and `on_change` called) if any flag flipped."""
        changed = self._evaluate_all(self._clock())
        if changed and self.on_change is not None:
            self.on_change()
        return changed

    def health(self) -> list[WireDeviceHealth]:
        return [state.health(device) for device, state in self._devices.items()]

    def report(self) -> bytes:
        """The retained device report, as of now (so it need not call `on_change`)."""
        now = self._clock()
        self._evaluate_all(now)
        return encode_devices_report(now, self.health())

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Notice silence: re-evaluate every `interval_s` seconds until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            self.check()

    def _evaluate_all(self, now: float) -> bool:
        flipped = [self._flip(device, state, now) for device, state in self._devices.items()]
        return any(flipped)

    def _settle(self, device: str, state: _Device, now: float) -> None:
        if self._flip(device, state, now) and self.on_change is not None:
            self.on_change()

    def _flip(self, device: str, state: _Device, now: float) -> bool:
        online = state.evaluate(now)
        if online == state.online:
            return False
        state.online = online
        if online:
            state.log.info("device online")
        else:
            state.log.warning("device offline: %s", _why_offline(state, now))
        return True


def _why_offline(state: _Device, now: float) -> str:
    if not state.link_up:
        return "its port or scanner is down"
    if state.last_seen is None:
        return f"not heard since the link came up {now - state.link_since:.0f} s ago"
    return f"not heard for {now - state.last_seen:.0f} s (window {state.window_s:.0f} s)"


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]
