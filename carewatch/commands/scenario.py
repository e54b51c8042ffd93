"""`carewatch sim scenario FILE [--speed N]`: play a resident scenario through a whole world.

An embedded broker, a hub on a scaled clock, one edge agent and the scenario's simulated devices
(simulators/scenario_world.py); the steps and the alerts are printed with their simulated times
as they happen, and the command ends with the timeline. Exit status 0, or 1 if the scenario's
`expect:` is not borne out; 2 for a file that cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from carewatch.demo.broker import start_embedded_broker
from carewatch.demo.hub_config import local_hub_config
from contract.yaml_documents import ConfigError
from hub.app import Hub
from hub.core.clock import ScaledClock
from simulators.scenario import (
    SCENARIOS,
    Outcome,
    Scenario,
    Step,
    find_scenario,
    load_scenario,
    unmet_expectations,
)
from simulators.scenario_world import ScenarioWorld


def run_scenario_command(args: argparse.Namespace) -> int:
    path = find_scenario(args.file)
    try:
        scenario = load_scenario(path)
    except FileNotFoundError:
        shipped = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
        print(f"carewatch sim scenario: no file {path}; shipped: {shipped}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"carewatch sim scenario: {exc}", file=sys.stderr)
        return 2
    if args.speed is not None:
        scenario = scenario.model_copy(update={"speed": args.speed})
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-scenario-"))
    try:
        return asyncio.run(play(scenario, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def play(scenario: Scenario, workdir: Path) -> int:
    """Run the world for `scenario`, printing as it goes; the exit status."""
    broker = await start_embedded_broker()
    clock = ScaledClock(scenario.start_at, scenario.speed, held=True)
    try:
        with ScenarioWorld(scenario, workdir) as world:
            sections = world.hub_sections()
            config = local_hub_config(
                broker,
                workdir,
                sections["sites"],
                users=sections["users"],
                watch=sections["watch"],
                roster=sections["roster"],
                escalation=sections["escalation"],
            )
            hub = await Hub.start(config, clock)
            printer = Printer(scenario, clock, world)
            printer.follow(hub)
            try:
                printer.banner()
                started = time.monotonic()
                await world.play(broker.host, broker.port, clock, hub, printer.step)
                await asyncio.sleep(0.2)  # the last items reach the hub's rules
                outcome = await world.outcome()
            finally:
                await world.hub.stop()  # ends the live stream, and so the printer's following
                await printer.done()
    finally:
        await broker.stop()
    return printer.summary(outcome, time.monotonic() - started)


class Printer:
    """Steps and alert changes, one line each, stamped with the simulated local time."""

    def __init__(self, scenario: Scenario, clock: ScaledClock, world: ScenarioWorld) -> None:
        self._scenario = scenario
        self._clock = clock
        self._world = world
        self._states: dict[int, tuple[str, bool]] = {}  # alert id -> state, cleared
        self._following: list[asyncio.Task[None]] = []

    def _line(self, at: float, text: str) -> None:
        print(f"{self._scenario.local(at):%H:%M:%S}  {text}", flush=True)

    def banner(self) -> None:
        s = self._scenario
        print(
            f"{s.name}\n{s.start:%Y-%m-%d %H:%M} to {s.local(s.end_at()):%H:%M} {s.timezone}, "
            f"bed {s.bed} ({s.resident.name}), speed {s.speed:g}: "
            f"about {s.duration_s / s.speed:.0f} s\n",
            flush=True,
        )

    def step(self, at: float, step: Step) -> None:
        self._line(at, f"step   {step.describe()}")
        if step.do == "hub_restart":
            self.follow(self._world.hub)

    def follow(self, hub: Hub) -> None:
        """Print the alert changes `hub` announces, until it stops."""
        self._following.append(asyncio.create_task(self._follow(hub.bus.subscribe())))

    async def done(self) -> None:
        await asyncio.gather(*self._following)

    async def _follow(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        while (alert := await queue.get()) is not None:
            change = self._change(alert)
            if change is not None:
                self._line(self._clock.now(), change)

    def _change(self, alert: dict[str, Any]) -> str | None:
        """What is new about `alert`: opened, its condition cleared, or a new state."""
        state = (alert["state"], alert["cleared_at"] is not None)
        previous = self._states.get(alert["id"])
        if previous is None and alert["sensed_at"] > self._scenario.end_at():
            return None  # the gateway's death message as the world shuts down
        self._states[alert["id"]] = state
        if previous is None:
            return f"ALERT  {_describe(alert)}"
        if state[0] != previous[0]:
            outcome = f" ({alert['outcome']})" if alert.get("outcome") else ""
            return f"{state[0]:<6} {alert['rule']}{outcome}"
        if state[1] and not previous[1]:
            return f"clear  {alert['rule']} (the condition is over; open until someone resolves it)"
        return None

    def summary(self, outcome: Outcome, wall_s: float) -> int:
        counts = Counter(alert.rule for alert in outcome.alerts)
        raised = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items())) or "none"
        print(f"\nEnd of the timeline ({wall_s:.1f} s). Alerts: {raised}.")
        unmet = unmet_expectations(self._scenario, outcome)
        for problem in unmet:
            print(f"NOT AS EXPECTED: {problem}")
        if self._scenario.expect.given and not unmet:
            print("As expected.")
        return 1 if unmet else 0


def _describe(alert: dict[str, Any]) -> str:
    if alert.get("bed"):
        where = f"bed {alert['bed']}, {alert.get('resident_name') or 'no resident'}"
    elif alert["subject"].startswith("device:"):
        room = f", {alert['room_name']}" if alert.get("room_name") else ""
        where = f"device {alert['device']}{room}"
    else:
        where = alert.get("room_name") or alert["subject"]
    return f"{alert['priority']:<9} {alert['rule']:<15} {where}"
