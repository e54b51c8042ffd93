"""The 20-device gateway that the edge benchmarks share: devices, rates, configs, traffic.

10 MR60FDA1 fall radars (serial, pseudo-terminals): a heartbeat frame every second and a
presence or motion report every 2-6 s. 5 Shelly BLU call buttons (BTHome v2, AES-CCM
encrypted): a press now and then (every 5 min on average). 5 BTHome sensors (the bthome-smoke
profile: smoke, battery, and the advert's RSSI): an advert every 10 s. Adverts reach the agent
through the simulated BLE air socket, so the real decoders run.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from contract.wire import Observation
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, button_press, smoke
from simulators.mr60fda1 import MR60FDA1Simulator

SITE: Final = "bench"
GATEWAY: Final = "gw-000"
RADARS: Final = 10
BUTTONS: Final = 5
SENSORS: Final = 5
HEARTBEAT_S: Final = 1.0
RADAR_REPORT_S: Final = (2.0, 6.0)
BUTTON_MEAN_S: Final = 300.0
SENSOR_S: Final = 10.0
RADAR_REPORTS: Final = ("present", "absent", "moving", "stationary")


@dataclass(frozen=True, slots=True)
class BLEDevice:
    id: str
    address: str
    key: str | None  # 32 hex characters for an encrypted device

    @property
    def key_bytes(self) -> bytes | None:
        return bytes.fromhex(self.key) if self.key else None


def radar_ids() -> list[str]:
    return [f"radar-{i:02d}" for i in range(RADARS)]


def buttons() -> list[BLEDevice]:
    return [
        BLEDevice(f"button-{i:02d}", f"B4:35:22:00:01:{i:02X}", bytes([0x40 + i] * 16).hex())
        for i in range(BUTTONS)
    ]


def sensors() -> list[BLEDevice]:
    return [BLEDevice(f"sensor-{i:02d}", f"A4:C1:38:00:02:{i:02X}", None) for i in range(SENSORS)]


def hub_site() -> dict[str, Any]:
    """The hub's registry entry for the benchmark gateway: one bed per radar and button."""
    rooms = [
        {"id": f"r{i:02d}", "name": f"Room {i}", "beds": [{"code": f"BED-{i:02d}"}]}
        for i in range(RADARS)
    ]
    devices: list[dict[str, Any]] = [
        {"id": dev, "gateway": GATEWAY, "profile": "seeed-mr60fda1", "bed": f"BED-{i:02d}"}
        for i, dev in enumerate(radar_ids())
    ]
    devices += [
        {"id": b.id, "gateway": GATEWAY, "profile": "shelly-blu-button1", "bed": f"BED-{i:02d}"}
        for i, b in enumerate(buttons())
    ]
    devices += [
        {"id": s.id, "gateway": GATEWAY, "profile": "bthome-smoke", "room": f"r{i:02d}"}
        for i, s in enumerate(sensors())
    ]
    return {
        "id": SITE,
        "name": "Benchmark home",
        "gateways": [GATEWAY],
        "zones": [{"id": "all", "name": "All", "rooms": rooms}],
        "devices": devices,
    }


def write_edge_config(
    path: Path, host: str, port: int, outbox: Path, air: Path, radar_ports: list[str]
) -> None:
    devices: list[dict[str, Any]] = [
        {"id": dev, "profile": "seeed-mr60fda1", "port": port_}
        for dev, port_ in zip(radar_ids(), radar_ports, strict=True)
    ]
    devices += [
        {"id": b.id, "profile": "shelly-blu-button1", "address": b.address, "key": b.key}
        for b in buttons()
    ]
    devices += [{"id": s.id, "profile": "bthome-smoke", "address": s.address} for s in sensors()]
    config = {
        "site": SITE,
        "gateway": GATEWAY,
        "broker": {"host": host, "port": port},
        "outbox": {"path": str(outbox)},
        "ble": {"backend": "simulated", "socket": str(air)},
        "devices": devices,
    }
    path.write_text(yaml.safe_dump(config))


ENTRY_POINTS: Final = {
    "cli": ["-m", "carewatch.cli", "--log-level", "WARNING", "edge"],  # `carewatch edge`
    "module": ["-m", "edge.agent"],  # the agent alone, without the other subcommands' imports
}


def start_edge(config: Path, log: Path, entry: str = "cli") -> subprocess.Popen[bytes]:
    """The agent in its own process (as on a gateway), by `carewatch edge` or `-m edge.agent`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                *ENTRY_POINTS[entry],
                "--config",
                str(config),
                "--log-level",
                "WARNING",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# --- live traffic --------------------------------------------------------------------------


class Traffic:
    """Drives the simulated devices at the fleet's rates; counts what it sent."""

    def __init__(self, radars: list[MR60FDA1Simulator], air: Path, seed: int = 1) -> None:
        self._radars = radars
        self._air = BLEAirSender(air)
        self._random = random.Random(seed)
        self.sent: Counter[str] = Counter()

    async def run(self, seconds: float) -> None:
        tasks = [self._radar(radar, seconds) for radar in self._radars]
        tasks += [self._button(b, n, seconds) for n, b in enumerate(buttons())]
        tasks += [self._sensor(s, n, seconds) for n, s in enumerate(sensors())]
        try:
            await asyncio.gather(*tasks)
        finally:
            self._air.close()

    async def _radar(self, radar: MR60FDA1Simulator, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        next_report = loop.time() + self._random.uniform(*RADAR_REPORT_S)
        while loop.time() < end:
            await asyncio.sleep(HEARTBEAT_S)
            radar.send("heartbeat")
            self.sent["radar heartbeat frames"] += 1
            if loop.time() >= next_report:
                radar.send(self._random.choice(RADAR_REPORTS))
                self.sent["radar report frames"] += 1
                next_report = loop.time() + self._random.uniform(*RADAR_REPORT_S)

    async def _button(self, button: BLEDevice, index: int, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        counter = 1
        while (wait := self._random.expovariate(1 / BUTTON_MEAN_S)) < end - loop.time():
            await asyncio.sleep(wait)
            assert button.key_bytes is not None
            secret = Encryption(button.key_bytes, button.address, counter)
            self._air.send(button.address, button_press(counter % 256, 90, encryption=secret))
            counter += 1
            self.sent["button presses"] += 1
        await asyncio.sleep(max(0.0, end - loop.time()))

    async def _sensor(self, sensor: BLEDevice, index: int, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        await asyncio.sleep(min(self._random.uniform(0, SENSOR_S), seconds))  # not in step
        packet = 0
        while loop.time() < end:
            self._air.send(sensor.address, smoke(packet % 256, False, 95))
            packet += 1
            self.sent["sensor adverts"] += 1
            await asyncio.sleep(min(SENSOR_S, max(0.0, end - loop.time())))


# --- one hour of observations, as the decoders would have produced them --------------------


def hour_of_observations(start: float, seconds: float = 3600.0, seed: int = 2) -> list[Observation]:
    """What the fleet senses in `seconds` from `start`, in time order."""
    rng = random.Random(seed)
    observations = [*_radar_hour(rng, start, seconds), *_button_hour(rng, start, seconds)]
    observations += _sensor_hour(rng, start, seconds)
    return sorted(observations, key=lambda o: o.at)


def _times(
    rng: random.Random, start: float, seconds: float, gap: tuple[float, float]
) -> Iterator[float]:
    at = start + rng.uniform(*gap)
    while at < start + seconds:
        yield at
        at += rng.uniform(*gap)


def _radar_hour(rng: random.Random, start: float, seconds: float) -> Iterator[Observation]:
    for dev in radar_ids():
        for at in _times(rng, start, seconds, RADAR_REPORT_S):
            name = rng.choice(("presence", "motion"))
            yield Observation(dev, at, "reading", name, rng.random() < 0.5)


def _button_hour(rng: random.Random, start: float, seconds: float) -> Iterator[Observation]:
    mean = (0.0, 2 * BUTTON_MEAN_S)
    for button in buttons():
        for at in _times(rng, start, seconds, mean):
            yield Observation(button.id, at, "event", "call_button", "press")
            yield Observation(button.id, at, "reading", "battery", 90)
            yield Observation(button.id, at, "reading", "rssi", -60)


def _sensor_hour(rng: random.Random, start: float, seconds: float) -> Iterator[Observation]:
    for sensor in sensors():
        for at in _times(rng, start, seconds, (SENSOR_S - 0.5, SENSOR_S + 0.5)):
            yield Observation(sensor.id, at, "reading", "smoke", False)
            yield Observation(sensor.id, at, "reading", "battery", 95)
            yield Observation(sensor.id, at, "reading", "rssi", -60)
