"""The demo's scripted night: a fall, call buttons and a smoke alarm in its first minute, then
occasional events (and the radars' heartbeats) so the console stays alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from carewatch.demo.home import UNCOVERED_BED, UNCOVERED_ZONE, DemoHome
from simulators.ble_air import BLEAirSender
from simulators.bthome import button_press, smoke

log = logging.getLogger("carewatch.demo")

RADAR_HEARTBEAT_S = 10.0

# Waits until the scripted night should begin; says why it begins.
NightBegins = Callable[[], Awaitable[str]]


class Scenario:
    """A scripted night, then occasional events so the console stays alive."""

    def __init__(self, home: DemoHome, workdir: Path, rng: random.Random) -> None:
        self._home = home
        self._workdir = workdir
        self._rng = rng
        self._air: dict[str, BLEAirSender] = {}

    def _sender(self, gateway: str) -> BLEAirSender:
        if gateway not in self._air:
            self._air[gateway] = BLEAirSender(self._workdir / f"air-{gateway}.sock")
        return self._air[gateway]

    def radar(self, code: str, frame: str) -> None:
        bed = self._home.bed(code)
        assert bed.radar is not None
        bed.radar.send(frame)
        log.info("scenario: %s radar → %s (%s)", code, frame, bed.resident)

    def call_button(self, code: str) -> None:
        bed = self._home.bed(code)
        bed.button_packet = (bed.button_packet + 1) % 256
        self._sender(bed.gateway).send(bed.button_address, button_press(bed.button_packet, 87))
        log.info("scenario: %s call button pressed (%s)", code, bed.resident)

    def smoke(self, device_id: str, detected: bool) -> None:
        detector = next(s for s in self._home.smokes if s.device_id == device_id)
        detector.packet = (detector.packet + 1) % 256
        advert = smoke(detector.packet, detected, 93)
        self._sender(detector.gateway).send(detector.address, advert)
        log.info("scenario: %s smoke %s", device_id, "ALARM" if detected else "clear")

    def _everyone_present(self) -> None:
        for bed in self._home.beds:
            self.radar(bed.code, "present")

    async def run(self, stop: asyncio.Event, night_begins: NightBegins) -> None:
        """Residents settle at once; the scripted night starts when `night_begins` returns
        (someone opened a console), so its first alarms find a person to reach."""
        script: list[tuple[float, Any]] = [
            (3, lambda: self.radar("SR-E-104", "moving")),
            (7, lambda: self.radar("SR-E-104", "fall")),
            (10, lambda: self.radar("FB-CHEN", "moving")),
            (13, lambda: self.call_button(UNCOVERED_BED)),  # reaches nobody at first, on purpose
            (17, lambda: self.call_button("FB-OKAFOR")),
            (25, lambda: self.smoke("smoke-west", True)),
            (28, lambda: self.smoke("smoke-west", True)),
            (39, lambda: self.call_button("SR-W-203")),
            (49, lambda: self.smoke("smoke-west", False)),
        ]
        heartbeats = asyncio.create_task(self._heartbeats(stop))
        try:
            if await _sleep_until(stop, time.monotonic() + 1):
                return
            self._everyone_present()
            why = await night_begins()
            if stop.is_set():
                return
            log.info("scenario: the night begins (%s)", why)
            started = time.monotonic()
            for at, action in script:
                if await _sleep_until(stop, started + at):
                    return
                action()
            while not await _sleep_until(stop, time.monotonic() + self._rng.uniform(45, 120)):
                self._random_event()
        finally:
            await heartbeats

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        """The radars' own heartbeat frames, which keep them online between events."""
        while not await _sleep_until(stop, time.monotonic() + RADAR_HEARTBEAT_S):
            for bed in self._home.beds:
                if bed.radar is not None:
                    bed.radar.send("heartbeat")

    def _random_event(self) -> None:
        # The Garden suite's one scripted call is the demo's "nobody reached" alarm; no more.
        bed = self._rng.choice([b for b in self._home.beds if b.zone != UNCOVERED_ZONE])
        choice = self._rng.random()
        if choice < 0.15:
            self.radar(bed.code, "fall")
        elif choice < 0.35:
            self.call_button(bed.code)
        else:
            self.radar(bed.code, self._rng.choice(["moving", "stationary"]))

    def close(self) -> None:
        for sender in self._air.values():
            sender.close()


async def _sleep_until(stop: asyncio.Event, deadline: float) -> bool:
    """Wait until `deadline` (monotonic); True if stopped first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
    return stop.is_set()
