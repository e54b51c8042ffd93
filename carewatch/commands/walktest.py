"""`carewatch walktest --simulate`: a whole walk test, unattended, against the simulators.

The world is the one `carewatch sim scenario` plays in (simulators/scenario_world.py): an
embedded broker, a hub on a scaled clock, one real edge agent, and one simulated device of each
kind, bound to a bed or a room of the site. A walk test starts on the site, then each device is
triggered through its byte-exact simulator, as an installer would (lie on the bed, walk past the
radars, press the call button, press the smoke test button, open the door); each device is
printed as it is ticked off. Exit status 0 if every device passed, 1 naming the silent ones
(`--silent DEVICE` keeps a device's simulator quiet), 2 for a wrong option.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from carewatch.demo.broker import start_embedded_broker
from carewatch.demo.hub_config import local_hub_config
from hub.app import Hub
from hub.commissioning.report import (
    CommissioningReport,
    build_report,
    render_html,
    render_pdf,
)
from hub.commissioning.walktest import WalkTests
from hub.core.clock import ScaledClock
from simulators.scenario import DEVICE_KINDS, Scenario, run_scenario
from simulators.scenario_world import SITE, ScenarioWorld

# What the installer does, one device after the other, STEP_S simulated seconds apart.
WALK: Final = ("in_bed", "fall", "bathroom_enter", "call_button", "smoke", "door_open")
STEP_S: Final = 30
DEFAULT_SPEED: Final = 30.0
SETTLE_S: Final = 3.0  # wall seconds to wait, after the last step, for the last ticks


class _Silent:
    """A dead device: whatever its simulator sends goes nowhere."""

    def send(self, frame: bytes) -> None:
        del frame


@dataclass(frozen=True, slots=True)
class WalkOutcome:
    status: dict[str, Any]

    @property
    def silent(self) -> list[dict[str, Any]]:
        return [row for row in self.status["devices"] if row["passed_at"] is None]

    @property
    def test_id(self) -> int:
        return int(self.status["id"])


def walk_scenario(name: str, speed: float, start: datetime | None = None) -> Scenario:
    """One device of every kind, each triggered once, starting at `start` (default: now, UTC)."""
    begin = (start or datetime.now(UTC)).replace(second=0, microsecond=0, tzinfo=None)
    steps = [
        {"at": f"{begin + timedelta(seconds=STEP_S * (n + 1)):%H:%M:%S}", "do": action}
        for n, action in enumerate(WALK)
    ]
    return Scenario.model_validate(
        {
            "name": name,
            "start": begin,
            "timezone": "UTC",
            "speed": speed,
            "resident": {"code": "E-0001", "name": "Mary Jones"},
            "devices": [{"id": kind.default_id, "kind": key} for key, kind in DEVICE_KINDS.items()],
            "timeline": steps,
            "end": f"{begin + timedelta(seconds=STEP_S * (len(WALK) + 1)):%H:%M:%S}",
        }
    )


def device_line(row: dict[str, Any], *, signal: bool = True) -> str:
    """One device of the checklist; `signal` adds its signal and battery (the final list:
    a BLE advert may carry them after the trigger)."""
    where = f"bed {row['bed']}" if row["bed"] else f"room {row['room_name']}"
    head = f"{row['device']:<16} {row['profile']:<24} {where:<16}"
    if row["passed_at"] is None:
        return f"  SILENT  {head}"
    passed = f"  passed  {head} {datetime.fromtimestamp(row['passed_at'], UTC):%H:%M:%S} "
    if not signal:
        return passed + str(row["trigger"])
    rssi = "—" if row["rssi"] is None else f"{row['rssi']} dBm"
    battery = "—" if row["battery"] is None else f"{row['battery']:g} %"
    return f"{passed}{row['trigger']:<18} signal {rssi}, battery {battery}"


async def _print_progress(queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    shown: set[str] = set()
    while (status := await queue.get()) is not None:
        for row in status["devices"]:
            if row["passed_at"] is not None and row["device"] not in shown:
                shown.add(row["device"])
                print(
                    f"[{len(shown)}/{status['total']}] {device_line(row, signal=False)}", flush=True
                )


async def _until_all_passed(tests: WalkTests, test_id: int, within: float) -> None:
    try:
        async with asyncio.timeout(within):
            # polling: the last items may still be on their way through the broker
            while (s := await tests.status(test_id))["passed"] < s["total"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        return


async def walk(
    world: ScenarioWorld,
    hub: Hub,
    broker: tuple[str, int],
    clock: ScaledClock,
    *,
    installer: str,
    silent: frozenset[str] = frozenset(),
) -> WalkOutcome:
    """Start a walk test on the world's site, trigger every device, stop it; the outcome."""
    tests = hub.walktests
    if tests is None:
        raise RuntimeError("this hub has no walk tests")
    test = await tests.start(SITE, None, installer)
    queue = tests.progress.subscribe()
    printing = asyncio.create_task(_print_progress(queue))
    senders = {
        device: _Silent() if device in silent else sender
        for device, sender in world.senders().items()
    }
    try:
        async with world.edge(*broker, clock):
            clock.release()
            await run_scenario(world.scenario, senders, clock)
            await _until_all_passed(tests, test.id, SETTLE_S)
        await tests.stop(test.id, installer)
    finally:
        tests.progress.unsubscribe(queue)
        queue.put_nowait(None)
        await printing
    return WalkOutcome(await tests.status(test.id))


async def save_report(tests: WalkTests, test_id: int, directory: Path) -> list[Path]:
    """The commissioning report as HTML and PDF files in `directory`."""
    report = await build_report(tests, test_id)
    return await asyncio.to_thread(write_report, report, directory)


def write_report(report: CommissioningReport, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / f"commissioning-{report.test_id}.html"
    pdf_path = directory / f"commissioning-{report.test_id}.pdf"
    html_path.write_text(render_html(report), encoding="utf-8")
    pdf_path.write_bytes(render_pdf(report))
    return [html_path, pdf_path]


def summary(outcome: WalkOutcome) -> int:
    status = outcome.status
    print(f"\nWalk test {status['id']}: {status['passed']} of {status['total']} devices passed.")
    for row in status["devices"]:
        print(device_line(row))
    if not outcome.silent:
        print("All devices passed.")
        return 0
    names = ", ".join(row["device"] for row in outcome.silent)
    print(f"FAILED: silent: {names}")
    return 1


async def simulate(args: argparse.Namespace, workdir: Path) -> int:
    scenario = walk_scenario(args.site, args.speed)
    unknown = sorted(set(args.silent) - set(scenario.devices_used()))
    if unknown:
        known = ", ".join(scenario.devices_used())
        print(f"carewatch walktest: no device {unknown[0]!r}; devices: {known}", file=sys.stderr)
        return 2
    broker = await start_embedded_broker()
    clock = ScaledClock(scenario.start_at, scenario.speed, held=True)
    try:
        with ScenarioWorld(scenario, workdir) as world:
            config = local_hub_config(broker, workdir, [world.site()], watch=world.watch())
            hub = await Hub.start(config, clock)
            try:
                devices = len(world.senders())
                print(f"Walk test of {args.site} ({devices} devices), by {args.installer}")
                outcome = await walk(
                    world,
                    hub,
                    (broker.host, broker.port),
                    clock,
                    installer=args.installer,
                    silent=frozenset(args.silent),
                )
                if args.report is not None and hub.walktests is not None:
                    for path in await save_report(hub.walktests, outcome.test_id, args.report):
                        print(f"report: {path}")
            finally:
                await hub.stop()
    finally:
        await broker.stop()
    return summary(outcome)


def _speed(text: str) -> float:
    speed = float(text)
    if speed <= 0:
        raise argparse.ArgumentTypeError("the speed must be above 0")
    return speed


def run_walktest_command(args: argparse.Namespace) -> int:
    if not args.simulate:
        print(
            "carewatch walktest: only --simulate is available from the command line; "
            "run a walk test on site from the installer's page (/installer)",
            file=sys.stderr,
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-walktest-"))
    try:
        return asyncio.run(simulate(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def add_walktest_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "walktest",
        help="walk test: tick off every device of a site",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--simulate", action="store_true", help="against the simulators")
    parser.add_argument("--site", default="Walk-test home", help="the simulated site's name")
    parser.add_argument(
        "--speed", type=_speed, default=DEFAULT_SPEED, help="simulated seconds per second"
    )
    parser.add_argument(
        "--silent",
        action="append",
        default=[],
        metavar="DEVICE",
        help="keep this device quiet (a dead device); repeatable",
    )
    parser.add_argument("--report", type=Path, metavar="DIR", help="write the report here")
    parser.add_argument(
        "--installer", default=f"cli:{getpass.getuser()}", help="who runs the walk test"
    )
    parser.set_defaults(func=run_walktest_command)
