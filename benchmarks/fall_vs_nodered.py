"""A fall published by a gateway → carewatch's console stream, against a hand-wired Node-RED flow.

One run, one Mosquitto, one fleet: `carewatch sim fleet` publishes `--beds` beds of routine
telemetry (0.25 items/s a bed, batched once a second per gateway of 20, simulators/fleet.py)
throughout. The hub runs as `carewatch hub` in its own process with SQLite and the fleet's
registry; Node-RED 4 runs in its own process with a flow from benchmarks/nodered/, subscribed
with QoS 1 to the same data topics as the hub (carewatch/v1/+/+/data):

- `flow.json`: MQTT in → function (the batch's falls) → websocket out; stores nothing;
- `flow_sqlite.json`: the same, and every item of every batch into SQLite (better-sqlite3,
  WAL, synchronous=NORMAL as the hub, one transaction per message, de-duplicated by
  topic, epoch and sequence number).

Each phase starts Node-RED with one flow beside the same hub, then publishes `--falls` falls,
one at a time, each from a different fall radar on a gateway of its own (`bench/gw-falls`),
in the wire format (contract/wire.py) with the outbox numbering a gateway uses. A fall is timed from
the publish call to its arrival on both consoles at once: the hub's alert on /api/stream (read
as the console and benchmarks/fall_to_console.py read it) and Node-RED's message on its
websocket. CPU is what each process used during the phase's falls.

At the end every fall batch is published again (a gateway resending its outbox after a lost
acknowledgement), the fleet is stopped, and the hub's database is checked: one row per item the
fleet and the falls gateway sent, none twice.

Node-RED and better-sqlite3 come from the npm registry: scripts/setup-nodered.

    python benchmarks/fall_vs_nodered.py --beds 10000 --falls 200
    python benchmarks/fall_vs_nodered.py --beds 500 --falls 20 --warmup 3   # a smoke run

Prints p50/p90/p99/max in milliseconds and CPU seconds. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import httpx
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fall_to_console import stream_alerts
from benchmarks.watch_common import PASSWORD, CpuMeter, child_named, percentile
from contract.wire import Observation, data_topic, encode_status, status_topic
from hub.access.auth import hash_password
from simulators.fleet import Outbox, plan_fleet, site_spec
from tests.support.mosquitto import free_port, mosquitto

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
SITE: Final = "bench"
FALLS_GATEWAY: Final = "gw-falls"
PROBE_GATEWAY: Final = "probe"  # not in the registry: the hub refuses it, Node-RED passes it on
FLOWS: Final = {"plain": "flow.json", "sqlite": "flow_sqlite.json"}
FLOW_TITLES: Final = {"plain": "stores nothing", "sqlite": "stores every item in SQLite"}
WAIT_S: Final = 10.0  # a fall that has not arrived by then is reported missing


def falls_site(beds: int) -> dict[str, Any]:
    """The beds the measured falls happen in: one fall radar each, on one gateway."""
    rooms = [
        {"id": f"f{i}", "name": f"Fall room {i}", "beds": [{"code": bed(i)}]} for i in range(beds)
    ]
    devices = [
        {"id": radar(i), "gateway": FALLS_GATEWAY, "profile": "seeed-mr60fda1", "bed": bed(i)}
        for i in range(beds)
    ]
    return {
        "id": SITE,
        "name": "Falls",
        "gateways": [FALLS_GATEWAY],
        "zones": [{"id": "falls", "name": "Falls", "rooms": rooms}],
        "devices": devices,
    }


def bed(i: int) -> str:
    return f"F-{i:05d}"


def radar(i: int) -> str:
    return f"fall-radar-{i}"


def hub_config(host: str, port: int, workdir: Path, sites: list[dict[str, Any]]) -> Path:
    config = {
        "broker": {"host": host, "port": port, "client_id": "bench-hub"},
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
        "sites": sites,
    }
    path = workdir / "hub.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML, and much faster to write
    return path


def start_hub(config: Path) -> tuple[subprocess.Popen[str], str]:
    """`carewatch hub` in its own process, logging to hub.log; its console's URL once it
    listens."""
    command = [sys.executable, "-m", "carewatch.cli", "--log-level", "WARNING", "hub"]
    with (config.parent / "hub.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )
    assert process.stdout is not None
    line = process.stdout.readline()  # the hub's first line, or none if it stopped
    found = re.search(r"console on (http://\S+)/$", line.strip())
    if found is None:
        process.terminate()
        raise SystemExit(f"the hub did not start; see {config.parent / 'hub.log'}")
    return process, found.group(1)


async def wait_broker_connected(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await client.get("/api/health")).json()["broker_connected"]:
            return
        await asyncio.sleep(0.2)
    raise SystemExit("the hub did not connect to the broker")


def start_fleet(host: str, port: int, beds: int) -> subprocess.Popen[str]:
    """The fleet simulator, routine telemetry only (no random events), until terminated."""
    command = [sys.executable, "-m", "carewatch.cli", "--log-level", "WARNING", "sim", "fleet"]
    options = ["--beds", str(beds), "--host", host, "--port", str(port), "--events-per-hour", "0"]
    return subprocess.Popen(
        [*command, *options, "--progress-every", "86400"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def stop_fleet(fleet: subprocess.Popen[str]) -> int:
    """Stop the fleet (it publishes what is queued and waits for the acknowledgements);
    the number of items it sent."""
    fleet.send_signal(signal.SIGTERM)
    out, _ = fleet.communicate(timeout=60)
    found = re.search(r"^stopped: .* items (\d+)", out, re.MULTILINE)
    if found is None:
        raise SystemExit(f"the fleet did not say what it sent: {out!r}")
    return int(found.group(1))


def start_nodered(
    nodered: Path, flow: str, host: str, port: int, workdir: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    red = nodered / "node_modules" / "node-red" / "red.js"
    if not red.exists():
        raise SystemExit(f"Node-RED is not installed in {nodered}: run scripts/setup-nodered")
    web_port = free_port()
    database = workdir / f"nodered-{flow}.db"
    user_dir = workdir / f"nodered-{flow}"
    user_dir.mkdir()
    env = {
        **os.environ,
        "NODE_PATH": str(nodered / "node_modules"),
        "MQTT_HOST": host,
        "MQTT_PORT": str(port),
        "NODERED_PORT": str(web_port),
        "NODERED_SQLITE": str(database),
    }
    command = ["node", str(red), "--settings", str(HERE / "nodered" / "settings.js")]
    command += ["--userDir", str(user_dir), str(HERE / "nodered" / FLOWS[flow])]
    with (workdir / f"nodered-{flow}.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, web_port, database


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Arrivals:
    """When each fall reached each console (perf_counter), and a wake-up for the waiter."""

    console: dict[str, float] = field(default_factory=dict)  # by bed
    nodered: dict[str, float] = field(default_factory=dict)  # by device
    moved: asyncio.Event = field(default_factory=asyncio.Event)


async def read_nodered(url: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with websockets.connect(url) as socket:
                ready.set()
                async for message in socket:
                    fall = json.loads(message)
                    arrivals.nodered.setdefault(fall["dev"], time.perf_counter())
                    arrivals.moved.set()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def read_console(client: httpx.AsyncClient, arrivals: Arrivals, ready: asyncio.Event) -> None:
    """fall_to_console's stream reader: the first open alert of each bed, by bed."""
    bridge = asyncio.Event()

    async def forward() -> None:
        while True:
            await bridge.wait()
            bridge.clear()
            arrivals.moved.set()

    forwarder = asyncio.create_task(forward())
    try:
        await stream_alerts(client, arrivals.console, bridge, ready)
    finally:
        forwarder.cancel()


class FallsGateway:
    """A gateway with fall radars: its birth, its outbox numbering, every batch it sent."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._outbox = Outbox()
        self._bdseq = int(time.time())
        self.sent: list[bytes] = []
        self._probes = 0

    async def birth(self) -> None:
        status = encode_status("online", self._bdseq, time.time(), "bench-falls")
        await self._client.publish(status_topic(SITE, FALLS_GATEWAY), status, qos=1, retain=True)

    def fall(self, i: int) -> bytes:
        item = Observation(radar(i), time.time(), "event", "fall", True).to_wire()
        payload = self._outbox.batch([item], self._bdseq, time.time())
        self.sent.append(payload)
        return payload

    async def publish(self, payload: bytes) -> None:
        await self._client.publish(data_topic(SITE, FALLS_GATEWAY), payload, qos=1)

    async def probe(self) -> str:
        """A fall from a gateway the hub does not know: proves Node-RED is subscribed."""
        self._probes += 1
        device = f"probe-{self._probes}"
        item = Observation(device, time.time(), "event", "fall", True).to_wire()
        payload = Outbox().batch([item], 0, time.time())
        await self._client.publish(data_topic(SITE, PROBE_GATEWAY), payload, qos=1)
        return device


@dataclass
class Phase:
    flow: str
    console_ms: list[float]
    nodered_ms: list[float]
    missing_console: int
    missing_nodered: int
    seconds: float
    cpu: dict[str, float]
    nodered_rows: int | None


async def wait_subscribed(gateway: FallsGateway, arrivals: Arrivals) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        device = await gateway.probe()

        def arrived(device: str = device) -> bool:
            return device in arrivals.nodered

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until(arrived, arrivals), 0.5)
            return
    raise SystemExit("Node-RED did not pass a probe fall on within 60 s")


async def _until(done: Callable[[], bool], arrivals: Arrivals) -> None:
    while not done():
        arrivals.moved.clear()
        await arrivals.moved.wait()


async def measure(
    gateway: FallsGateway,
    arrivals: Arrivals,
    beds: range,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[list[float], list[float], int, int]:
    console: list[float] = []
    nodered: list[float] = []
    missing_console = missing_nodered = 0
    for i in beds:
        payload = gateway.fall(i)
        published = time.perf_counter()
        await gateway.publish(payload)

        def both(i: int = i) -> bool:
            return bed(i) in arrivals.console and radar(i) in arrivals.nodered

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until(both, arrivals), WAIT_S)
        if bed(i) in arrivals.console:
            console.append((arrivals.console[bed(i)] - published) * 1000)
        else:
            missing_console += 1
        if radar(i) in arrivals.nodered:
            nodered.append((arrivals.nodered[radar(i)] - published) * 1000)
        else:
            missing_nodered += 1
        # Falls land anywhere in the fleet's second, not in step with its bursts.
        await asyncio.sleep(args.gap + rng.random() * args.jitter)
    return console, nodered, missing_console, missing_nodered


async def run_phase(
    flow: str,
    number: int,
    gateway: FallsGateway,
    arrivals: Arrivals,
    processes: dict[str, psutil.Process],
    args: argparse.Namespace,
    workdir: Path,
    rng: random.Random,
) -> Phase:
    host, port = args.broker
    nodered, web_port, database = start_nodered(args.nodered_dir, flow, host, port, workdir)
    try:
        ready = asyncio.Event()
        url = f"ws://127.0.0.1:{web_port}/ws/falls"
        reader = asyncio.create_task(read_nodered(url, arrivals, ready))
        await asyncio.wait_for(ready.wait(), 60)
        await wait_subscribed(gateway, arrivals)
        await asyncio.sleep(args.warmup)
        meter = CpuMeter({**processes, "Node-RED": psutil.Process(nodered.pid)})
        meter.start()
        started = time.perf_counter()
        beds = range(number * args.falls, (number + 1) * args.falls)
        console, red, missing_console, missing_red = await measure(
            gateway, arrivals, beds, args, rng
        )
        seconds = time.perf_counter() - started
        cpu = meter.stop()
        reader.cancel()
    finally:
        stop(nodered)
    rows = None
    if flow == "sqlite":
        with contextlib.closing(sqlite3.connect(database)) as db:
            rows = int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    return Phase(flow, console, red, missing_console, missing_red, seconds, cpu, rows)


@dataclass
class StoreCheck:
    fleet_items: int
    falls: int
    resent: int
    rows: int
    twice: int
    counters: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.rows == self.fleet_items + self.falls and self.twice == 0


async def wait_stored(client: httpx.AsyncClient, expected: int) -> dict[str, int]:
    """The hub's ingest counters once it has accepted `expected` items (or has stopped moving)."""
    last, still = -1, time.monotonic()
    while True:
        counters: dict[str, int] = (await client.get("/api/health")).json()["ingest"]
        if counters["accepted"] >= expected:
            return counters
        if counters["accepted"] != last:
            last, still = counters["accepted"], time.monotonic()
        elif time.monotonic() - still > 30:
            return counters
        await asyncio.sleep(0.5)


def count_rows(database: Path) -> tuple[int, int]:
    """Rows of readings and events; rows that are another row's copy (same device, name,
    value and sensed time)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = twice = 0
        for table in ("readings", "events"):
            rows += int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            twice += int(
                db.execute(
                    f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table}"
                    " GROUP BY device, name, value, sensed_at HAVING n > 1)"
                ).fetchone()[0]
            )
    return rows, twice


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-vs-nodered-"))
    print(f"databases and logs (hub.log, nodered-*.log) in {workdir}", flush=True)
    print("  (removed at the end of a run that finished, unless --keep)", flush=True)
    flows = list(FLOWS) if args.nodered == "both" else [args.nodered]
    rng = random.Random(args.seed)
    with mosquitto() as broker:
        args.broker = (broker.host, broker.port)
        fleet_site = site_spec(plan_fleet(args.beds))
        config = hub_config(
            broker.host, broker.port, workdir, [fleet_site, falls_site(args.falls * len(flows))]
        )
        hub, url = start_hub(config)
        fleet: subprocess.Popen[str] | None = None
        try:
            async with (
                httpx.AsyncClient(base_url=url, timeout=60) as client,
                aiomqtt.Client(broker.host, broker.port, identifier="bench-falls-gw") as mqtt,
            ):
                await wait_broker_connected(client)
                login = await client.post(
                    "/api/login", json={"username": "nurse", "password": PASSWORD}
                )
                login.raise_for_status()
                gateway = FallsGateway(mqtt)
                await gateway.birth()
                fleet = start_fleet(broker.host, broker.port, args.beds)
                arrivals, ready = Arrivals(), asyncio.Event()
                console = asyncio.create_task(read_console(client, arrivals, ready))
                await asyncio.wait_for(ready.wait(), 30)
                await asyncio.sleep(args.warmup)
                processes = {
                    "carewatch hub": psutil.Process(hub.pid),
                    "mosquitto": child_named("mosquitto"),
                    "fleet simulator": psutil.Process(fleet.pid),
                }
                phases = []
                for number, flow in enumerate(flows):
                    phase = await run_phase(
                        flow, number, gateway, arrivals, processes, args, workdir, rng
                    )
                    report_phase(phase, args)
                    phases.append(phase)
                console.cancel()
                for payload in gateway.sent:  # the outbox resent: the hub must not store twice
                    await gateway.publish(payload)
                fleet_items = await asyncio.to_thread(stop_fleet, fleet)
                fleet = None
                falls = len(gateway.sent)
                counters = await wait_stored(client, fleet_items + falls)
        finally:
            if fleet is not None:
                stop(fleet)
            stop(hub)
        rows, twice = count_rows(workdir / "hub.db")
    report_store(StoreCheck(fleet_items, falls, falls, rows, twice, counters))
    if not args.keep:
        shutil.rmtree(workdir)


def report_phase(phase: Phase, args: argparse.Namespace) -> None:
    print(
        f"\nNode-RED {FLOWS[phase.flow]} ({FLOW_TITLES[phase.flow]}), "
        f"{args.beds} fleet beds, {args.falls} falls in {phase.seconds:.1f} s"
    )
    print(f"  {'fall → console':<20}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}   ms   missing")
    for name, latencies, missing in (
        ("carewatch", phase.console_ms, phase.missing_console),
        ("Node-RED", phase.nodered_ms, phase.missing_nodered),
    ):
        if not latencies:
            print(f"  {name:<20}{'none arrived':>32}        {missing}")
            continue
        ordered = sorted(latencies)
        figures = "".join(f"{percentile(ordered, p):8.1f}" for p in (50, 90, 99))
        print(f"  {name:<20}{figures}{ordered[-1]:8.1f}        {missing}")
    print("  CPU during the falls (s, and % of one core):")
    for name, seconds in phase.cpu.items():
        print(f"    {name:<18}{seconds:8.2f} s {100 * seconds / phase.seconds:6.1f} %")
    if phase.nodered_rows is not None:
        print(f"  Node-RED stored {phase.nodered_rows} items while it ran")


def report_store(check: StoreCheck) -> None:
    sent = check.fleet_items + check.falls
    print(
        f"\ncarewatch store: the fleet sent {check.fleet_items} items and the falls gateway"
        f" {check.falls} falls (and all {check.resent} falls again, as an outbox resends)"
    )
    print(
        f"  rows in readings and events: {check.rows} of {sent}, stored twice: {check.twice}"
        f" — {'every item once' if check.ok else 'MISMATCH'}"
    )
    print(f"  hub ingest counters: {check.counters}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", type=int, default=10_000, help="fleet beds (default 10000)")
    parser.add_argument("--falls", type=int, default=200, help="falls a phase (default 200)")
    parser.add_argument(
        "--nodered",
        choices=["both", *FLOWS],
        default="both",
        help="the Node-RED flows to run, one phase each (default both)",
    )
    parser.add_argument("--gap", type=float, default=0.1, help="least pause between falls, s")
    parser.add_argument("--jitter", type=float, default=0.2, help="random extra pause, s")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument(
        "--nodered-dir",
        type=Path,
        default=ROOT / ".node" / "nodered",
        help="where scripts/setup-nodered installed Node-RED (default .node/nodered)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
