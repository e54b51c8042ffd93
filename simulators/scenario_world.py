"""The world a scenario plays in: its simulated devices, the registry and watch settings the hub
needs, and one real edge agent that hears the devices.

```python
with ScenarioWorld(scenario, workdir) as world:
    clock = ScaledClock(scenario.start_at, scenario.speed, held=True)
    hub = await Hub.start(config_with(sites=[world.site()], watch=world.watch()), clock)
    await world.play(broker_host, broker_port, clock)   # edge agent up, clock released, timeline
```

The serial radars sit behind pseudo-terminals that the agent opens as it would /dev/ttyUSB0; the
BLE devices send byte-exact adverts into the agent's simulated BLE air. The clock stands still
while the agent starts, so the first step happens on time whatever the speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from hub.clock import ScaledClock
from simulators.ble_air import BLEAirSender
from simulators.scenario import DEVICE_KINDS, Scenario, Sender, StepListener, run_scenario
from simulators.serial_pty import SerialPtySimulator

SITE: Final = "home"
GATEWAY: Final = "gw-sim"
READY_TIMEOUT_S: Final = 15.0
DRAIN_TIMEOUT_S: Final = 5.0


class _AirDevice:
    """A BLE device: its adverts go into the agent's simulated air from its address."""

    def __init__(self, air: BLEAirSender, address: str) -> None:
        self._air = air
        self.address = address

    def send(self, frame: bytes) -> None:
        self._air.send(self.address, frame)


class ScenarioWorld:
    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.air_socket = workdir / "air.sock"
        self._air = BLEAirSender(self.air_socket)
        self._kinds = scenario.devices_used()
        self._ptys: dict[str, SerialPtySimulator] = {}
        self._ble: dict[str, _AirDevice] = {}
        for index, (device, kind) in enumerate(self._kinds.items()):
            if DEVICE_KINDS[kind].device_profile.connection == "serial":
                self._ptys[device] = SerialPtySimulator({})
            else:
                self._ble[device] = _AirDevice(self._air, f"A4:C1:38:5C:00:{index:02X}")

    def senders(self) -> dict[str, Sender]:
        return {**self._ptys, **self._ble}

    # --- what the hub needs -----------------------------------------------------------------

    def site(self) -> dict[str, Any]:
        """The registry entry of the resident's home: bedroom with the bed, bathroom, exit."""
        resident = self.scenario.resident
        bed = {
            "code": self.scenario.bed,
            "resident": {"code": resident.code, "name": resident.name},
        }
        rooms = [
            {"id": "bedroom", "name": "Bedroom", "kind": "bedroom", "beds": [bed]},
            {"id": "bathroom", "name": "Bathroom", "kind": "bathroom"},
            {"id": "exit", "name": "Exit", "kind": "exit"},
        ]
        return {
            "id": SITE,
            "name": self.scenario.name,
            "gateways": [GATEWAY],
            "zones": [{"id": "ward", "name": "Ward", "rooms": rooms}],
            "devices": [
                self._registry_device(device, kind) for device, kind in self._kinds.items()
            ],
        }

    def _registry_device(self, device: str, kind_name: str) -> dict[str, Any]:
        kind = DEVICE_KINDS[kind_name]
        place = {"bed": self.scenario.bed} if kind.place == "bed" else {"room": kind.place}
        role = {"role": kind.role} if kind.role else {}
        return {"id": device, "gateway": GATEWAY, "profile": kind.profile, **place, **role}

    def watch(self) -> dict[str, Any]:
        """The hub's `watch:` section: the site's settings and the resident's overrides."""
        resident = self.scenario.resident
        return {
            "sites": {SITE: {"timezone": self.scenario.timezone, **self.scenario.watch}},
            "residents": {resident.code: resident.watch} if resident.watch else {},
        }

    # --- the edge agent ---------------------------------------------------------------------

    def edge_config(self, broker_host: str, broker_port: int) -> EdgeConfig:
        serial = [
            {"id": device, "profile": DEVICE_KINDS[self._kinds[device]].profile, "port": pty.port}
            for device, pty in self._ptys.items()
        ]
        ble = [
            {
                "id": device,
                "profile": DEVICE_KINDS[self._kinds[device]].profile,
                "address": air.address,
            }
            for device, air in self._ble.items()
        ]
        backend = {"backend": "simulated", "socket": str(self.air_socket)} if ble else {}
        return EdgeConfig.model_validate(
            {
                "site": SITE,
                "gateway": GATEWAY,
                "broker": {"host": broker_host, "port": broker_port},
                "outbox": {"path": str(self.workdir / "outbox.db")},
                "ble": backend,
                "devices": serial + ble,
            }
        )

    @asynccontextmanager
    async def edge(
        self, broker_host: str, broker_port: int, clock: ScaledClock
    ) -> AsyncIterator[EdgeAgent]:
        """A running edge agent on `clock`, its ports open and its link to the hub live."""
        agent = EdgeAgent(self.edge_config(broker_host, broker_port), clock=clock.now)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            await _until(lambda: self._hears(agent, task), READY_TIMEOUT_S, "start")
            if task.done():
                await task  # it failed: say why
            yield agent
            await _until(agent.outbox.pending, DRAIN_TIMEOUT_S, "send what it had", until=0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

    async def _hears(self, agent: EdgeAgent, task: asyncio.Task[None]) -> bool:
        """Ready to hear the devices (or failed to start, which the caller then raises)."""
        return task.done() or (
            agent.ready.is_set()
            and all(reader.is_open for reader in agent.readers)
            and (not self._ble or self.air_socket.exists())
            and agent.publisher.live
        )

    async def play(
        self,
        broker_host: str,
        broker_port: int,
        clock: ScaledClock,
        on_step: StepListener | None = None,
    ) -> None:
        """Start the edge agent, let time run, play the timeline to its end."""
        async with self.edge(broker_host, broker_port, clock):
            clock.release()
            await run_scenario(self.scenario, self.senders(), clock, on_step)

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        for pty in self._ptys.values():
            pty.close()
        self._air.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


async def _until(
    check: Callable[[], Awaitable[object]], within: float, what: str, until: object = True
) -> None:
    """Poll `check` until it gives `until`; TimeoutError naming `what` after `within` s."""
    try:
        async with asyncio.timeout(within):
            # polling: an agent starting or draining has no event to await
            while await check() != until:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise TimeoutError(
            f"the scenario's edge agent did not {what} within {within:g} s"
        ) from None
