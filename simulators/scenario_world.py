"""The world a scenario plays in: its simulated devices, the registry, watch settings, people and
roster the hub needs, one real edge agent that hears the devices, and the world's events.

```python
with ScenarioWorld(scenario, workdir) as world:
    clock = ScaledClock(scenario.start_at, scenario.speed, held=True)
    hub = await Hub.start(world.hub_config(...), clock)   # sites, watch, users, roster, escalation
    await world.play(broker_host, broker_port, clock, hub)  # agent up, clock released, timeline
    outcome = await world.outcome()                          # alerts, who was told, the bed
    await world.hub.stop()                                   # the hub now (restarts start anew)
```

The serial radars sit behind pseudo-terminals that the agent opens, through a stable link in the
work directory, as it would /dev/serial/by-id/…; unplugging closes the pseudo-terminal and
plugging back opens a new one behind the same link. The BLE devices send byte-exact adverts into
the agent's simulated BLE air. The agent reaches the broker through a TCP relay that a network
outage cuts (and refuses connections until the network is back), so the agent keeps running and
keeps its backlog. A hub restart stops the hub and starts it again on the same data and clock.
People act through the hub's AlertService, as the console does. The clock stands still while the
agent starts, so the first step happens on time whatever the speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.publisher import Backoff
from hub.access.users import hash_password
from hub.app import Hub
from hub.core.clock import ScaledClock
from simulators.ble_air import BLEAirSender
from simulators.scenario import SITE as SITE  # the walk test's world names it from here
from simulators.scenario import (
    ZONE,
    Bound,
    Outcome,
    Scenario,
    SeenAlert,
    Sender,
    Step,
    StepListener,
    run_scenario,
)
from simulators.serial_pty import SerialPtySimulator

log = logging.getLogger("carewatch.scenario")

GATEWAY: Final = "gw-sim"
READY_TIMEOUT_S: Final = 15.0
DRAIN_TIMEOUT_S: Final = 5.0
HUB_CONNECT_TIMEOUT_S: Final = 15.0
SERIAL_RETRY_S: Final = 0.05  # wall seconds between the agent's tries to reopen a serial port
RECONNECT: Final = Backoff(initial=0.05, maximum=0.1)  # the agent's broker reconnects (wall s)
ALL_STATES: Final = ("open", "acknowledged", "resolved")
ACK_CHANNEL: Final = "console"


class _AirDevice:
    """A BLE device: its adverts go into the agent's simulated air from its address."""

    def __init__(self, air: BLEAirSender, address: str) -> None:
        self._air = air
        self.address = address

    def send(self, frame: bytes) -> None:
        self._air.send(self.address, frame)


class _SerialDevice:
    """A serial device behind a pseudo-terminal reached through a stable link; unplugged, what
    it sends goes nowhere."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._pty: SerialPtySimulator | None = SerialPtySimulator({}, link)

    def send(self, frame: bytes) -> None:
        if self._pty is not None:
            self._pty.send(frame)

    def unplug(self) -> None:
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def plug(self) -> None:
        if self._pty is None:
            self._pty = SerialPtySimulator({}, self.link)


class _Network:
    """The gateway's link to the broker: a TCP relay that an outage cuts."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = int(self._server.sockets[0].getsockname()[1])

    def down(self) -> None:
        """Drop every connection at once, as a dead link would, and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            far_reader, far_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, far_writer))
        await asyncio.gather(
            _pipe(reader, far_writer), _pipe(far_reader, writer), return_exceptions=True
        )
        for side in (writer, far_writer):
            self._writers.discard(side)
            side.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


class ScenarioWorld:
    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.air_socket = workdir / "air.sock"
        self._air = BLEAirSender(self.air_socket)
        self._bound = scenario.devices_used()
        self._serial: dict[str, _SerialDevice] = {}
        self._ble: dict[str, _AirDevice] = {}
        for index, (device, bound) in enumerate(self._bound.items()):
            if bound.serial:
                self._serial[device] = _SerialDevice(workdir / f"tty-{device}")
            else:
                self._ble[device] = _AirDevice(self._air, f"A4:C1:38:5C:00:{index:02X}")
        self._hub: Hub | None = None
        self._clock: ScaledClock | None = None
        self._network: _Network | None = None

    def senders(self) -> dict[str, Sender]:
        return {**self._serial, **self._ble}

    @property
    def hub(self) -> Hub:
        """The hub now: the one `play` was given, or the one a restart started."""
        if self._hub is None:
            raise RuntimeError("the world has no hub yet: play it first")
        return self._hub

    # --- what the hub needs -----------------------------------------------------------------

    def site(self) -> dict[str, Any]:
        """The registry entry of the resident's home: bedroom with the bed, bathroom, exit."""
        resident = self.scenario.resident
        bed = {
            "code": self.scenario.bed,
            "resident": {"code": resident.code, "name": resident.name, "flags": resident.flags},
        }
        rooms = [
            {"id": "bedroom", "name": "Bedroom", "kind": "bedroom", "beds": [bed]},
            {"id": "bathroom", "name": "Bathroom", "kind": "bathroom"},
            {"id": "exit", "name": "Exit", "kind": "exit"},
        ]
        zone = {"id": ZONE, "name": "Ward", "kind": self.scenario.zone.kind, "rooms": rooms}
        return {
            "id": SITE,
            "name": self.scenario.name,
            "gateways": [GATEWAY],
            "zones": [zone],
            "devices": [
                self._registry_device(device, bound) for device, bound in self._bound.items()
            ],
        }

    def _registry_device(self, device: str, bound: Bound) -> dict[str, Any]:
        place = {"bed": self.scenario.bed} if bound.place == "bed" else {"room": bound.place}
        role = {"role": bound.role} if bound.role else {}
        return {"id": device, "gateway": GATEWAY, "profile": bound.profile, **place, **role}

    def watch(self) -> dict[str, Any]:
        """The hub's `watch:` section: the site's, the zone's and the resident's settings."""
        scenario = self.scenario
        resident = scenario.resident
        zone = scenario.zone.watch
        return {
            "sites": {SITE: {"timezone": scenario.timezone, **scenario.watch}},
            "zones": {f"{SITE}/{ZONE}": zone} if zone else {},
            "residents": {resident.code: resident.watch} if resident.watch else {},
        }

    def users(self) -> list[dict[str, Any]]:
        """Every person of the scenario as a staff user of the site (they never log in)."""
        people = self.scenario.people()
        digest = hash_password(secrets.token_urlsafe(16)) if people else ""
        return [
            {"username": name, "role": "staff", "sites": [SITE], "password_hash": digest}
            for name in people
        ]

    def roster(self) -> dict[str, Any]:
        shifts = [shift.model_dump(mode="json") for shift in self.scenario.roster]
        return {"sites": {SITE: {"shifts": shifts}}} if shifts else {}

    def escalation(self) -> dict[str, Any]:
        return {"defaults": self.scenario.escalation} if self.scenario.escalation else {}

    def hub_sections(self) -> dict[str, Any]:
        """The hub configuration's sections for this world (add broker, database and web)."""
        return {
            "sites": [self.site()],
            "watch": self.watch(),
            "users": self.users(),
            "roster": self.roster(),
            "escalation": self.escalation(),
        }

    # --- the edge agent ---------------------------------------------------------------------

    def edge_config(self, broker_host: str, broker_port: int) -> EdgeConfig:
        serial = [
            {"id": device, "profile": self._bound[device].profile, "port": str(pty.link)}
            for device, pty in self._serial.items()
        ]
        ble = [
            {"id": device, "profile": self._bound[device].profile, "address": air.address}
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
        """A running edge agent on `clock`, its ports open and its link to the hub live; it
        reaches the broker through the world's network."""
        network = self._network = _Network(broker_host, broker_port)
        await network.up()
        agent = EdgeAgent(
            self.edge_config("127.0.0.1", network.port),
            clock=clock.now,
            backoff=RECONNECT,
            serial_retry_s=SERIAL_RETRY_S,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            await _until(lambda: self._hears(agent, task), READY_TIMEOUT_S, "start")
            if task.done():
                await task  # it failed: say why
            yield agent
            await network.up()  # an outage left open ends with the timeline
            await _until(agent.outbox.pending, DRAIN_TIMEOUT_S, "send what it had", until=0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            network.down()

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
        hub: Hub,
        on_step: StepListener | None = None,
    ) -> None:
        """Start the edge agent, let time run, play the timeline to its end."""
        self._hub, self._clock = hub, clock
        async with self.edge(broker_host, broker_port, clock):
            clock.release()
            await run_scenario(self.scenario, self.senders(), clock, on_step, self)

    # --- the world's events -----------------------------------------------------------------

    async def event(self, step: Step) -> None:
        if step.do == "network_down" and self._network is not None:
            self._network.down()
        elif step.do == "network_up" and self._network is not None:
            await self._network.up()
        elif step.do == "unplug" and step.device is not None:
            self._serial[step.device].unplug()
        elif step.do == "plug" and step.device is not None:
            self._serial[step.device].plug()
        elif step.do == "hub_restart":
            await self._restart_hub()
        elif step.do == "acknowledge" and step.rule is not None and step.by is not None:
            await self._acknowledge(step.rule, step.by)

    async def _restart_hub(self) -> None:
        old = self.hub
        await old.stop()
        self._hub = await Hub.start(old.config, self._clock)
        await asyncio.wait_for(self._hub.mqtt.connected.wait(), HUB_CONNECT_TIMEOUT_S)

    async def _acknowledge(self, rule: str, user: str) -> None:
        """`user` acknowledges the newest open alert of `rule`, from the console."""
        hub = self.hub
        open_alerts = [
            a for a in await hub.alerts.records.page(("open",), None) if a["rule"] == rule
        ]
        if not open_alerts:
            log.warning("%s found no open %s alert to acknowledge", user, rule)
            return
        newest = max(open_alerts, key=lambda alert: alert["opened_at"])
        await hub.alerts.acknowledge(newest["id"], user, ACK_CHANNEL)

    # --- what happened ----------------------------------------------------------------------

    async def outcome(self) -> Outcome:
        """The alerts whose condition arose by the end (not the gateway's death message as the
        world shuts down), whom their escalation reached, and the bed's live state now."""
        hub, end = self.hub, self.scenario.end_at()
        seen = []
        for alert in await hub.alerts.records.page(ALL_STATES, None):
            if alert["sensed_at"] > end:
                continue
            told: tuple[tuple[str | None, str], ...] = ()
            if hub.escalation is not None:
                reached = (await hub.escalation.summary(alert["id"]))["reached"]
                told = tuple((r["user"], r["channel"]) for r in reached)
            audit = await hub.store.audit.for_alert(alert["id"])
            opening: Any = next((e["detail"] for e in audit if e["action"] == "opened"), {})
            seen.append(
                SeenAlert(
                    rule=alert["rule"],
                    priority=alert["priority"],
                    sensed_at=alert["sensed_at"],
                    opened_at=alert["opened_at"],
                    late=alert["late_s"] is not None,
                    triggered=alert["count"],
                    cleared=alert["cleared_at"] is not None,
                    device=alert["device"],
                    acknowledged_by=alert["acknowledged_by"],
                    told=told,
                    detail=opening if isinstance(opening, dict) else {},
                )
            )
        bed = await hub.beds.bed(self.scenario.bed, self._now())
        return Outcome(
            seen, in_bed=bed.in_bed if bed else None, bed_state=bed.code if bed else None
        )

    def _now(self) -> float:
        if self._clock is None:
            raise RuntimeError("the world has no clock yet: play it first")
        return self._clock.now()

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        for device in self._serial.values():
            device.unplug()
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
