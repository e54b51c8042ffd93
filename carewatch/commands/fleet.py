"""`carewatch sim fleet`: N beds of virtual gateways on the real wire, for load tests and demos.

carewatch sim fleet --beds 10000 --registry-out /tmp/fleet --registry-only   # registry only
carewatch sim fleet --beds 10000 --host 127.0.0.1 --port 1883 --duration 30

Exit status: 0 stopped (Ctrl-C, SIGTERM or --duration), 1 the broker could not be reached or
was lost, 2 bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from simulators.fleet import (
    BEDS_PER_GATEWAY,
    Fleet,
    FleetError,
    FleetOptions,
    FleetPlan,
    FleetStats,
    plan_fleet,
    write_registry,
)

PASSWORD_ENV = "CAREWATCH_FLEET_PASSWORD"


def add_fleet_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = kinds.add_parser(
        "fleet",
        help="N beds of virtual gateways on the real wire format (load tests, demos)",
        description="Publish N beds' worth of gateway traffic to an MQTT broker (docs/fleet.md).",
    )
    fleet.add_argument("--beds", type=_positive_int, required=True)
    fleet.add_argument("--gateways-of", type=_positive_int, default=BEDS_PER_GATEWAY, metavar="N")
    fleet.add_argument("--site", default="fleet", help="site id (default: fleet)")
    fleet.add_argument("--host", default="127.0.0.1")
    fleet.add_argument("--port", type=int, default=1883)
    fleet.add_argument(
        "--username",
        default=None,
        help=f"broker user that may write the site's topics; password in ${PASSWORD_ENV}",
    )
    fleet.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S s")
    fleet.add_argument("--events-per-hour", type=float, default=60.0, metavar="X")
    fleet.add_argument("--progress-every", type=float, default=5.0, metavar="S")
    fleet.add_argument("--seed", type=int, default=None)
    fleet.add_argument(
        "--registry-out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write sites.yaml and beds/residents/devices CSVs for the hub",
    )
    fleet.add_argument("--registry-only", action="store_true", help="write the registry and exit")
    fleet.set_defaults(func=run_fleet_command)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run_fleet_command(args: argparse.Namespace) -> int:
    try:
        plan = plan_fleet(args.beds, args.gateways_of, args.site)
    except FleetError as exc:
        print(f"carewatch sim fleet: {exc}", file=sys.stderr)
        return 2
    if args.registry_out is not None:
        _write_registry(plan, args.registry_out)
    if args.registry_only:
        return 0
    options = FleetOptions(
        args.host,
        args.port,
        args.events_per_hour,
        args.seed,
        username=args.username,
        password=os.environ.get(PASSWORD_ENV) if args.username else None,
    )
    try:
        asyncio.run(_run(Fleet(plan, options), args.duration, args.progress_every))
    except FleetError as exc:
        print(f"carewatch sim fleet: {exc}", file=sys.stderr)
        return 1
    return 0


def _write_registry(plan: FleetPlan, directory: Path) -> None:
    paths = write_registry(plan, directory)
    print(f"registry for {len(plan.beds)} beds written: {', '.join(map(str, paths))}", flush=True)
    print(
        f"  hub: put the sites: block of {paths[0]} in the hub configuration, or import into"
        " its database in this order: carewatch registry import beds|residents|devices",
        flush=True,
    )


async def _run(fleet: Fleet, duration: float | None, every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stats = fleet.stats
    print(
        f"fleet: {stats.beds} beds, {stats.gateways} gateways, site {fleet.plan.site},"
        f" broker {fleet.options.host}:{fleet.options.port}",
        flush=True,
    )
    reporter = asyncio.create_task(_progress(stats, every))
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    try:
        await fleet.run(stop)
    finally:
        reporter.cancel()
        if timer is not None:
            timer.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print(f"stopped: {stats.line().strip()}", flush=True)


async def _progress(stats: FleetStats, every: float) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(every)
            print(stats.line(), flush=True)
