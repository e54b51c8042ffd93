"""Fall frame written to a radar's serial port → alert on the staff console's live stream.

Real parts throughout: MR60FDA1 simulators behind pseudo-terminals, `carewatch edge` agents in
their own processes (20 radars each, as on a gateway), a real Mosquitto, the hub with SQLite,
and an SSE client reading /api/stream as the console does. Falls are written one at a time, each
to a different bed, and timed from os.write() to the alert's arrival on the stream.

Optionally, `--background-beds N` adds N beds of telemetry (one reading per bed every
`--reading-interval` seconds, batched per virtual gateway of 20 beds) from a separate process
speaking the real wire format, so the hub has ingest work to do meanwhile; with `--together`
every virtual gateway publishes at the start of each second, as the fleet simulator's do, so
that falls land behind, inside and between the floods of batches (docs/watch.md, "Alarms
first").

    python benchmarks/fall_to_console.py --falls 200
    python benchmarks/fall_to_console.py --falls 200 --background-beds 10000
    python benchmarks/fall_to_console.py --falls 200 --background-beds 10000 --together \
        --reading-interval 4

The benchmark configures no roster, so every fall is escalated to nobody; the escalation's
NOBODY REACHED errors are not printed.

Prints p50/p90/p99/max in milliseconds. Figures, not assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig
from simulators.mr60fda1 import FRAMES, MR60FDA1Simulator
from tests.support.mosquitto import mosquitto

SITE = "bench"
RADARS_PER_GATEWAY = 20
BACKGROUND_BEDS_PER_GATEWAY = 20
PASSWORD = "bench-password"
FALL = FRAMES["fall"]


def registry(falls: int, background_beds: int) -> dict[str, Any]:
    rooms: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    gateways: set[str] = set()
    for i in range(falls):
        gateway = f"gw-{i // RADARS_PER_GATEWAY:03d}"
        gateways.add(gateway)
        rooms.append({"id": f"r{i}", "name": f"Room {i}", "beds": [{"code": f"B-{i:05d}"}]})
        devices.append(
            {
                "id": f"radar-{i}",
                "gateway": gateway,
                "profile": "seeed-mr60fda1",
                "bed": f"B-{i:05d}",
            }
        )
    for i in range(background_beds):
        gateway = f"bg-{i // BACKGROUND_BEDS_PER_GATEWAY:04d}"
        gateways.add(gateway)
        rooms.append({"id": f"bg{i}", "name": f"Room bg{i}", "beds": [{"code": f"BG-{i:05d}"}]})
        devices.append(
            {
                "id": f"bg-radar-{i}",
                "gateway": gateway,
                "profile": "seeed-mr60fda1",
                "bed": f"BG-{i:05d}",
            }
        )
    return {
        "id": SITE,
        "name": "Benchmark home",
        "gateways": sorted(gateways),
        "zones": [{"id": "all", "name": "All", "rooms": rooms}],
        "devices": devices,
    }


def start_edges(
    radars: list[MR60FDA1Simulator], host: str, port: int, workdir: Path
) -> list[subprocess.Popen[bytes]]:
    processes = []
    for g in range(0, len(radars), RADARS_PER_GATEWAY):
        gateway = f"gw-{g // RADARS_PER_GATEWAY:03d}"
        config = {
            "site": SITE,
            "gateway": gateway,
            "broker": {"host": host, "port": port},
            "outbox": {"path": str(workdir / f"{gateway}.db")},
            "devices": [
                {"id": f"radar-{i}", "profile": "seeed-mr60fda1", "port": radars[i].port}
                for i in range(g, min(g + RADARS_PER_GATEWAY, len(radars)))
            ],
        }
        path = workdir / f"{gateway}.yaml"
        path.write_text(yaml.safe_dump(config))
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "carewatch.cli",
                    "--log-level",
                    "WARNING",
                    "edge",
                    "--config",
                    str(path),
                    "--log-level",
                    "WARNING",
                ],
            )
        )
    return processes


def start_background(
    beds: int, interval: float, together: bool, host: str, port: int
) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("background_telemetry.py")
    return subprocess.Popen(
        [
            sys.executable,
            str(script),
            "--beds",
            str(beds),
            "--interval",
            str(interval),
            "--host",
            host,
            "--port",
            str(port),
            "--site",
            SITE,
            *(["--together"] if together else []),
        ]
    )


async def stream_alerts(
    client: httpx.AsyncClient,
    arrivals: dict[str, float],
    arrived: asyncio.Event,
    ready: asyncio.Event,
) -> None:
    async with client.stream("GET", "/api/stream") as response:
        async for line in response.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            elif line.startswith('data: {"id"'):
                alert = json.loads(line[6:])
                if alert["state"] == "open" and alert["count"] == 1:
                    arrivals.setdefault(alert["bed"], time.perf_counter())
                    arrived.set()


async def wait_connected(hub: Hub, gateways: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        online = 0
        for g in range(gateways):
            status = await hub.ingest.records.gateway_status(SITE, f"gw-{g:03d}")
            online += status is not None and status[0] == "online"
        if online == gateways:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"only some of the {gateways} edge agents came online")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-bench-"))
    with mosquitto() as broker:
        config = HubConfig.model_validate(
            {
                "broker": {"host": broker.host, "port": broker.port, "client_id": "bench-hub"},
                "database": str(workdir / "hub.db"),
                "web": {"port": 0, "secret_key": "b" * 40},
                "users": [
                    {
                        "username": "nurse",
                        "password_hash": hash_password(PASSWORD),
                        "role": "staff",
                        "sites": ["*"],
                    }
                ],
                "sites": [registry(args.falls, args.background_beds)],
            }
        )
        hub = await Hub.start(config)
        radars = [MR60FDA1Simulator() for _ in range(args.falls)]
        edges = start_edges(radars, broker.host, broker.port, workdir)
        background = (
            start_background(
                args.background_beds,
                args.reading_interval,
                args.together,
                broker.host,
                broker.port,
            )
            if args.background_beds
            else None
        )
        try:
            await wait_connected(hub, len(edges))
            await asyncio.sleep(args.warmup)
            latencies = await measure(hub, radars, args.gap)
            ingest = hub.ingest.counters()
        finally:
            for process in [*edges, *([background] if background else [])]:
                process.terminate()
            for process in [*edges, *([background] if background else [])]:
                process.wait(10)
            for radar in radars:
                radar.close()
            await hub.stop()
    report(latencies, args, ingest)


async def measure(hub: Hub, radars: list[MR60FDA1Simulator], gap: float) -> list[float]:
    arrivals: dict[str, float] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as client:
        login = await client.post("/api/login", json={"username": "nurse", "password": PASSWORD})
        login.raise_for_status()
        ready, arrived = asyncio.Event(), asyncio.Event()
        reader = asyncio.create_task(stream_alerts(client, arrivals, arrived, ready))
        await asyncio.wait_for(ready.wait(), 10)
        for i, radar in enumerate(radars):
            bed = f"B-{i:05d}"
            arrived.clear()
            written = time.perf_counter()
            radar.send(FALL)
            deadline = written + 10
            while bed not in arrivals and time.perf_counter() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), deadline - time.perf_counter())
                arrived.clear()
            if bed not in arrivals:
                print(f"no alert for {bed} within 10 s", file=sys.stderr)
                continue
            latencies.append((arrivals[bed] - written) * 1000)
            await asyncio.sleep(gap)
        reader.cancel()
    return latencies


def report(latencies: list[float], args: argparse.Namespace, ingest: dict[str, int]) -> None:
    if not latencies:
        raise SystemExit("no alert arrived")
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    print(
        f"fall frame → console stream, {len(latencies)}/{args.falls} falls, "
        f"background beds: {args.background_beds}"
        f"{' (all gateways at once each second)' if args.together else ''}"
    )
    print(
        f"  p50 {pct(50):7.1f} ms   p90 {pct(90):7.1f} ms   p99 {pct(99):7.1f} ms   "
        f"max {ordered[-1]:7.1f} ms   mean {statistics.fmean(ordered):7.1f} ms"
    )
    print(f"  hub ingest counters: {ingest}")
    print("  targets (docs/architecture.md): p50 ≤ 50 ms, p99 ≤ 250 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--falls", type=int, default=200)
    parser.add_argument("--background-beds", type=int, default=0)
    parser.add_argument(
        "--reading-interval",
        type=float,
        default=5.0,
        help="seconds between readings per background bed (default 5)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="background gateways all publish at the start of each second (the fleet's flood)",
    )
    parser.add_argument("--gap", type=float, default=0.02, help="pause between falls, s")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    logging.basicConfig(level=logging.ERROR)
    # No roster: every fall reaches nobody, and would log NOBODY REACHED at ERROR.
    logging.getLogger("carewatch.hub.escalation").setLevel(logging.CRITICAL)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
