"""The demo run: a simulated care home and two family beds, watched end to end.

Everything real but the sensors: an embedded MQTT broker (amqtt) on loopback, the hub with
SQLite, one edge agent per gateway reading byte-exact radar frames from pseudo-terminals and
BTHome adverts from a simulated BLE air, and a scripted night in which a fall, call-button
presses and a smoke alarm happen within the first minute.

The home has a roster (day and night staff per wing, a charge nurse on every shift, a
supervisor, an installer), so escalation reaches people through their consoles and, once they
subscribe on a phone, Web Push. One room, the Garden suite, is on nobody's roster: its call
button is pressed early on purpose, so the "nobody reached" path is shown. See docs/demo.md.

What it prints ends with the start banner (URLs, users, the password); the hub's, the gateways'
and the simulators' logs go to `demo.log` in the data folder unless `--verbose`. Stopping it
stops the hub first, so that its own gateways going away raise no alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import time
from pathlib import Path
from typing import Final

from carewatch.demo.announce import announce
from carewatch.demo.broker import start_embedded_broker
from carewatch.demo.home import (
    DemoHome,
    build_home,
    demo_roster,
    demo_users,
    edge_configs,
    family_first,
    registry_for,
)
from carewatch.demo.hub_config import local_hub_config
from carewatch.demo.options import NIGHT_WAITS_S, DemoOptions
from carewatch.demo.scenario import Scenario
from carewatch.logging_setup import ContextFormatter
from edge.agent import EdgeAgent
from hub.app import Hub
from simulators.mr60fda1 import MR60FDA1Simulator

log = logging.getLogger("carewatch.demo")

# How long the banner waits for every gateway to be connected to a listening hub.
GATEWAYS_UP_S: Final = 20.0
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def run_demo(options: DemoOptions, stop: asyncio.Event) -> int:
    _check_listen(options.web_host, options.web_port)  # before anything starts (raises OSError)
    home = build_home()
    broker = await start_embedded_broker()
    for bed in home.beds:
        bed.radar = MR60FDA1Simulator()
    password = secrets.token_urlsafe(9)
    config = local_hub_config(
        broker,
        options.workdir,
        [registry_for(home)],
        web_port=options.web_port,
        web_host=options.web_host,
        users=demo_users(home, password),
        roster=demo_roster(),
        escalation=family_first(home),
        push_hosts=options.push_hosts,
    )
    try:
        hub = await Hub.start(config)
    except BaseException:  # a port in use, an address not of this machine: leave nothing behind
        _close_radars(home)
        await broker.stop()
        raise
    if not options.verbose:
        _route_uvicorn_logs()  # uvicorn set up its own stderr handlers as the hub started
    gateways_stop = asyncio.Event()  # the gateways stop after the hub (see `_stop_demo`)
    agents = [EdgeAgent(config) for config in edge_configs(home, broker, options.workdir)]
    agent_tasks = [asyncio.create_task(agent.run(gateways_stop)) for agent in agents]
    scenario = Scenario(home, options.workdir, random.Random(12))
    scenario_task: asyncio.Task[None] | None = None
    try:
        late = await _gateways_up(agents, stop)
        if late:
            log.warning("gateways not connected to the hub yet: %s", ", ".join(late))

        async def night_begins() -> str:
            return await _first_console(hub, stop, NIGHT_WAITS_S)

        scenario_task = asyncio.create_task(scenario.run(stop, night_begins))
        announce(options, hub, password, home)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.duration)
    finally:
        stop.set()
        await _stop_demo(hub, scenario_task, gateways_stop, agent_tasks)
        scenario.close()
        _close_radars(home)
        await broker.stop()
    print("carewatch demo stopped.", flush=True)
    return 0


def _check_listen(host: str, port: int) -> None:
    """Whether the web server can listen there, asked before anything starts: a hub that
    fails to bind its port leaves its database open, and the process would not end."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _close_radars(home: DemoHome) -> None:
    for bed in home.beds:
        if bed.radar is not None:
            bed.radar.close()


async def _gateways_up(agents: list[EdgeAgent], stop: asyncio.Event) -> list[str]:
    """Wait until every gateway is connected and has heard the hub online (or GATEWAYS_UP_S
    passed, or the demo is stopped); the gateways that are not, by name."""
    deadline = time.monotonic() + GATEWAYS_UP_S
    while True:
        late = [
            agent.config.gateway
            for agent in agents
            if not agent.ready.is_set() or not agent.publisher.live
        ]
        if not late or stop.is_set() or time.monotonic() > deadline:
            return late
        await asyncio.sleep(0.1)


async def _first_console(hub: Hub, stop: asyncio.Event, wait_s: float) -> str:
    """Until a signed-in user has a live console open (or `wait_s` passed, or the demo stops)."""
    deadline = time.monotonic() + wait_s
    while not stop.is_set():
        watching = sorted(hub.bus.connected_users())
        if watching:
            return f"{', '.join(watching)} opened a console"
        if time.monotonic() > deadline:
            return f"no console opened within {wait_s:g} s"
        await asyncio.sleep(0.2)
    return "stopped"


async def _stop_demo(
    hub: Hub,
    scenario_task: asyncio.Task[None] | None,
    gateways_stop: asyncio.Event,
    agent_tasks: list[asyncio.Task[None]],
) -> None:
    """A planned stop of the whole demo, in the order that raises no alarm: the scenario, then
    the hub, then the gateways.

    Gateways that stop while the hub still listens publish their offline status and their
    devices go quiet: the hub rightly raises `gateway_offline` (and would for a gateway that
    stops alone). Stopping the hub first means nobody is watching when they go. The gateways
    then hear the hub's own offline status; they log that at INFO here, as a planned stop.
    """
    log.info(
        "demo stopping: the scenario, then the hub (so that the gateways going away raise no "
        "alarm), then the gateways and the broker"
    )
    if scenario_task is not None:
        await asyncio.gather(scenario_task, return_exceptions=True)
    PLANNED_STOP.active = True
    await hub.stop()
    gateways_stop.set()
    await asyncio.gather(*agent_tasks, return_exceptions=True)


class _PlannedStop(logging.Filter):
    """Once the demo is stopping, a gateway hearing that the hub went offline is expected: the
    demo stopped it first. Logged at INFO, saying so, instead of as a warning."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if self.active and message.startswith("hub is offline"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = message.replace(
                "hub is offline", "hub is offline (planned: the demo stops the hub first)", 1
            )
        return True


PLANNED_STOP: Final = _PlannedStop()


def _route_uvicorn_logs() -> None:
    """uvicorn gives its loggers their own stderr handlers; send them to the demo's log."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def log_to_file(path: Path) -> None:
    """Every log line (hub, gateways, simulators, broker, warnings) to `path`, none on screen."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
    handler.setFormatter(formatter or ContextFormatter(LOG_FORMAT))
    root.handlers[:] = [handler]
    logging.captureWarnings(True)
