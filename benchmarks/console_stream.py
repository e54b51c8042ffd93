"""Alert raised → every one of 50 staff consoles, under 10,000 beds of background telemetry.

Real parts throughout, each in its own process as in production: a real Mosquitto, the hub as
`carewatch hub --config …` (SQLite, real clock, its site's night window set around now so the
night rules are live), benchmarks/background_telemetry.py sending the bed-radar mix for `--beds`
beds at one reading per bed every `--reading-interval` s (10,000 beds every 5 s: 2,000
readings/s), and this process holding `--consoles` staff consoles: each its own user, logged in
through POST /api/login with its own session cookie, reading GET /api/stream.

Then `--alerts` alerts, each on a bed of its own, call buttons and falls in turn, published as a
gateway does (real wire format, QoS 1), `--gap-min`…`--gap-max` s apart (uniformly at random).
For every (alert, console) pair the arrival on the console's stream is timed twice, both on
this machine's clock: from the alert's `opened_at` (the moment the hub raised it) and from just
before the MQTT publish. A console only timestamps what it read; splitting lines and parsing wait
until the alerts have been sent, so that 50 readers in one process skew the arrivals as little
as possible.

    python benchmarks/console_stream.py
    python benchmarks/console_stream.py --consoles 50 --beds 10000 --alerts 200 --warmup 5

Prints p50/p90/p99/max in milliseconds. Figures, not assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiomqtt
import httpx
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.watch_common import (
    BEDS_PER_GATEWAY,
    SITE,
    CpuMeter,
    child_named,
    percentile,
    site_spec,
    start_telemetry,
)
from benchmarks.watch_latency import Gateways, Sample, item, trigger_zone, watch_loop
from hub.auth import hash_password
from hub.clock import ScaledClock, SystemClock
from hub.registry_models import SiteSpec
from hub.registry_service import RegistryService
from hub.store import Store
from tests.mosquitto import mosquitto

REPO: Final = Path(__file__).resolve().parent.parent
PASSWORD: Final = "console-bench-password"
# Every console is a member of staff who sees every site (hub/access.py).
STAFF_GRANT: Final[dict[str, Any]] = {"role": "staff", "sites": ["*"]}
RULES: Final = (("call_button", "tr-button-{}"), ("fall", "tr-fall-{}"))
HUB_START_TIMEOUT_S: Final = 120.0
ARRIVAL_TIMEOUT_S: Final = 10.0
SETTLE_S: Final = 1.0  # after the last alert, before the first check for missing arrivals
ALERT_LINE: Final = b'data: {"id"'
HELLO: Final = b"event: hello"
AlertKey = tuple[str, str]  # (rule, bed)


@dataclass(frozen=True, slots=True)
class Arrival:
    received: float  # time.time() when the console read the line
    opened_at: float  # the hub's time.time() when it raised the alert


@dataclass
class Console:
    """One staff console: its own client (cookie jar, connection) and its own stream."""

    username: str
    client: httpx.AsyncClient
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def log_in(self) -> None:
        response = await self.client.post(
            "/api/login", json={"username": self.username, "password": PASSWORD}
        )
        response.raise_for_status()

    async def read(self) -> None:
        """Keep each piece of the stream with the time it was read; nothing more."""
        async with self.client.stream("GET", "/api/stream") as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw():
                self.chunks.append((time.time(), chunk))
                if not self.ready.is_set() and HELLO in chunk:
                    self.ready.set()

    def lines(self) -> Iterator[tuple[float, bytes]]:
        """Each line of the stream with the time of the piece that completed it."""
        pending = b""
        for received, chunk in self.chunks:
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                yield received, line

    def arrivals(self) -> dict[AlertKey, Arrival]:
        """The first arrival of each open (rule, bed) alert."""
        seen: dict[AlertKey, Arrival] = {}
        for received, line in self.lines():
            if not line.startswith(ALERT_LINE):
                continue
            alert = json.loads(line[6:])
            if alert["state"] == "open" and alert["bed"] is not None:
                key = (alert["rule"], alert["bed"])
                seen.setdefault(key, Arrival(received, alert["opened_at"]))
        return seen


@dataclass(frozen=True, slots=True)
class Sent:
    key: AlertKey
    published: float  # time.time() just before the MQTT publish


@dataclass
class Results:
    sent: list[Sent] = field(default_factory=list)
    arrivals: dict[str, dict[AlertKey, Arrival]] = field(default_factory=dict)
    stalls: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    background_rate: float = 0.0
    live_consoles: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    hub_rss: list[int] = field(default_factory=list)  # sampled during the measurement
    hub_peak_rss: int = 0
    hub_start_s: float = 0.0


def night_around_now() -> dict[str, str]:
    """A night window (UTC, the site's default zone) from an hour ago to three hours ahead."""
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=3)).strftime("%H:%M"),
    }


def hub_config(host: str, port: int, database: Path, consoles: int) -> dict[str, Any]:
    """The hub's configuration file; the registry is seeded into `database` beforehand."""
    password_hash = hash_password(PASSWORD)  # once: every console user shares the hash
    users = [
        {"username": console_name(i), "password_hash": password_hash, **STAFF_GRANT}
        for i in range(consoles)
    ]
    return {
        "broker": {"host": host, "port": port, "client_id": "bench-hub"},
        "database": str(database),
        "web": {"port": 0, "secret_key": "b" * 40},
        "users": users,
        "watch": {
            "sites": {SITE: {"night": night_around_now()}},
            "zones": {f"{SITE}/calls": {"device_offline": False}},
        },
    }


def console_name(i: int) -> str:
    return f"console-{i:02d}"


async def seed_registry(database: Path, beds: int, alerts: int) -> None:
    """Write the site into the hub's database, as a first start from `sites:` would.

    Reading a 10,000-bed `sites:` list from YAML takes the hub about 20 s here; the database
    is the source of truth after the first start anyway.
    """
    spec = SiteSpec.model_validate(site_spec(beds, [trigger_zone(alerts)]))
    store = await Store.open(database)
    try:
        await RegistryService.open(store, SystemClock(), [spec])
    finally:
        await store.close()


@dataclass
class HubProcess:
    process: asyncio.subprocess.Process
    url: str
    log: Path

    @classmethod
    async def start(cls, config: Path, log: Path) -> HubProcess:
        command = [sys.executable, "-m", "carewatch.cli", "hub", "--config", str(config)]
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=stderr
            )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), HUB_START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if b"console on " not in line:
            process.kill()
            await process.wait()
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
            raise SystemExit(f"the hub did not start; its log ends:\n{tail}")
        url = line.decode().split("console on ", 1)[1].strip().rstrip("/")
        return cls(process, url, log)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def peak_rss(self) -> int:
        """VmHWM: the most resident memory the hub has had."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        return int(kib) * 1024


async def health(web: httpx.AsyncClient) -> dict[str, Any]:
    response = await web.get("/api/health")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def wait_broker_connected(web: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while not (await health(web))["broker_connected"]:
        if time.monotonic() > deadline:
            raise SystemExit("the hub did not connect to the broker within 30 s")
        await asyncio.sleep(0.2)


async def open_consoles(url: str, count: int) -> tuple[list[Console], list[asyncio.Task[None]]]:
    """Log every console in with its own session, then open its stream and wait for hello."""
    consoles = [
        Console(console_name(i), httpx.AsyncClient(base_url=url, timeout=60)) for i in range(count)
    ]
    await asyncio.gather(*(console.log_in() for console in consoles))
    readers = [asyncio.create_task(console.read()) for console in consoles]
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in consoles)), 30)
    return consoles, readers


async def send_alerts(gateways: Gateways, args: argparse.Namespace) -> list[Sent]:
    """Call buttons and falls in turn, bed TR-i for the i-th, spaced at random."""
    spacing = random.Random(5)
    sent = []
    for i in range(args.alerts):
        rule, device = RULES[i % len(RULES)]
        at = gateways.clock.now()
        published = time.time()
        await gateways.send(
            f"tr-{i // BEDS_PER_GATEWAY:03d}", [item(device.format(i), at, event=rule)]
        )
        sent.append(Sent((rule, f"TR-{i:05d}"), published))
        await asyncio.sleep(spacing.uniform(args.gap_min, args.gap_max))
    return sent


async def collect(
    consoles: Sequence[Console], sent: Sequence[Sent]
) -> dict[str, dict[AlertKey, Arrival]]:
    """Every console's arrivals, once each has every alert or the wait is over."""
    await asyncio.sleep(SETTLE_S)
    wanted = {s.key for s in sent}
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S - SETTLE_S
    while True:
        arrivals = {console.username: console.arrivals() for console in consoles}
        complete = all(wanted <= seen.keys() for seen in arrivals.values())
        if complete or time.monotonic() > deadline:
            return arrivals
        await asyncio.sleep(0.5)


async def measure(
    hub: HubProcess, broker: tuple[str, int], meter: CpuMeter, args: argparse.Namespace
) -> Results:
    results = Results()
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as web:
        await wait_broker_connected(web)
        consoles, readers = await open_consoles(hub.url, args.consoles)
        try:
            async with aiomqtt.Client(*broker, identifier="bench-alerts") as mqtt:
                await asyncio.sleep(args.warmup)
                before = await health(web)
                results.live_consoles = before["live_consoles"]
                gateways = Gateways(mqtt, ScaledClock(time.time(), 1.0))
                lag = asyncio.create_task(watch_loop(results.stalls))
                sampler = asyncio.create_task(sample_rss(hub.process.pid, results.hub_rss))
                began = time.perf_counter()
                meter.start()
                results.sent = await send_alerts(gateways, args)
                results.cpu = meter.stop()
                results.seconds = time.perf_counter() - began
                lag.cancel()
                sampler.cancel()
                after = await health(web)
                accepted = after["ingest"]["accepted"] - before["ingest"]["accepted"]
                results.background_rate = (accepted - len(results.sent)) / results.seconds
                results.arrivals = await collect(consoles, results.sent)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await asyncio.gather(*(console.client.aclose() for console in consoles))
    return results


async def sample_rss(pid: int, samples: list[int]) -> None:
    process = psutil.Process(pid)
    while True:
        samples.append(process.memory_info().rss)
        await asyncio.sleep(1.0)


def write_config(workdir: Path, broker: tuple[str, int], consoles: int) -> Path:
    path = workdir / "hub.yaml"
    path.write_text(yaml.safe_dump(hub_config(*broker, workdir / "hub.db", consoles)))
    return path


async def run(args: argparse.Namespace, workdir: Path) -> Results:
    with mosquitto() as broker:
        address = (broker.host, broker.port)
        config = write_config(workdir, address, args.consoles)
        began = time.perf_counter()
        await seed_registry(workdir / "hub.db", args.beds, args.alerts)
        hub = await HubProcess.start(config, workdir / "hub.log")
        start_s = time.perf_counter() - began
        background = start_telemetry(*address, args.beds, "--interval", str(args.reading_interval))
        try:
            meter = CpuMeter(
                {
                    "hub": psutil.Process(hub.process.pid),
                    "mosquitto": child_named("mosquitto"),
                    "background publisher": psutil.Process(background.pid),
                    "consoles (this process)": psutil.Process(),
                }
            )
            results = await measure(hub, address, meter, args)
            results.hub_peak_rss = hub.peak_rss()
            results.hub_start_s = start_s
        finally:
            background.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                background.communicate(timeout=30)
            await hub.stop()
    return results


@dataclass
class Pairs:
    """Milliseconds for every (alert, console) pair that arrived, and per console."""

    from_raised: list[float] = field(default_factory=list)
    from_publish: list[float] = field(default_factory=list)
    per_console: dict[str, list[float]] = field(default_factory=dict)
    raise_ms: list[float] = field(default_factory=list)  # publish → opened_at, one per alert
    spread_ms: list[float] = field(default_factory=list)  # first → last console, per alert
    missing: dict[str, int] = field(default_factory=dict)


def pairs_of(results: Results) -> Pairs:
    pairs = Pairs()
    for console, seen in results.arrivals.items():
        mine = pairs.per_console.setdefault(console, [])
        for sent in results.sent:
            arrival = seen.get(sent.key)
            if arrival is None:
                pairs.missing[console] = pairs.missing.get(console, 0) + 1
                continue
            mine.append((arrival.received - arrival.opened_at) * 1000)
            pairs.from_publish.append((arrival.received - sent.published) * 1000)
        pairs.from_raised += mine
    for sent in results.sent:
        got = [seen[sent.key] for seen in results.arrivals.values() if sent.key in seen]
        if got:
            pairs.raise_ms.append((got[0].opened_at - sent.published) * 1000)
            received = [arrival.received for arrival in got]
            pairs.spread_ms.append((max(received) - min(received)) * 1000)
    return pairs


def row(name: str, values: Sequence[float]) -> str:
    if not values:
        return f"  {name:34} none arrived"
    ordered = sorted(values)
    return (
        f"  {name:34} {len(ordered):>6} {percentile(ordered, 50):8.1f} "
        f"{percentile(ordered, 90):8.1f} {percentile(ordered, 99):8.1f} {ordered[-1]:8.1f} "
        f"{statistics.fmean(ordered):8.1f}"
    )


def report(results: Results, args: argparse.Namespace) -> None:
    pairs = pairs_of(results)
    print(
        f"alert raised → {args.consoles} consoles' live streams: {len(results.sent)} alerts "
        f"(call_button and fall in turn, {args.gap_min:g}–{args.gap_max:g} s apart), "
        f"{args.beds:,} beds of background telemetry"
    )
    print(f"  {'ms':34} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'mean':>8}")
    print(row("raised (opened_at) → console", pairs.from_raised))
    print(row("publish → console", pairs.from_publish))
    print(row("publish → raised (hub, per alert)", pairs.raise_ms))
    print(row("first → last console (per alert)", pairs.spread_ms))
    slowest = max(
        (c for c, ms in pairs.per_console.items() if ms),
        key=lambda c: percentile(sorted(pairs.per_console[c]), 99),
        default=None,
    )
    if slowest is not None:
        p99 = percentile(sorted(pairs.per_console[slowest]), 99)
        print(f"  slowest console's p99 (raised → console): {p99:.1f} ms ({slowest})")
    complete = sum(1 for c in results.arrivals if c not in pairs.missing)
    print(
        f"  consoles that received every alert: {complete} of {args.consoles}"
        f" (hub counted {results.live_consoles} live streams)"
    )
    for console, count in sorted(pairs.missing.items()):
        print(f"    {console}: {count} of {len(results.sent)} alerts missing")
    print_resources(results)
    print("  target (DESIGN.md §13, fall frame → console stream): p50 ≤ 50 ms, p99 ≤ 250 ms")


def print_resources(results: Results) -> None:
    print(
        f"  background ingested: {results.background_rate:,.0f} readings/s over "
        f"{results.seconds:.0f} s; hub start (registry seeded): {results.hub_start_s:.1f} s"
    )
    cores = "   ".join(f"{name} {cpu / results.seconds:.2f}" for name, cpu in results.cpu.items())
    print(f"  CPU (cores)  {cores}")
    mib = 1024 * 1024
    print(
        f"  hub RSS during the alerts: max {max(results.hub_rss, default=0) / mib:.0f} MiB; "
        f"peak since start {results.hub_peak_rss / mib:.0f} MiB (argon2 logins use 64 MiB each)"
    )
    stalls = ", ".join(f"{ms:.0f} ms" for _, ms in results.stalls)
    print(f"  this process's event loop held up > 100 ms: {stalls or 'never'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consoles", type=int, default=50, help="staff consoles, one user each")
    parser.add_argument("--beds", type=int, default=10_000, help="beds of background telemetry")
    parser.add_argument("--alerts", type=int, default=200, help="alerts, one bed each")
    parser.add_argument("--warmup", type=float, default=5.0, help="s of background first")
    parser.add_argument("--reading-interval", type=float, default=5.0, help="s per bed")
    parser.add_argument("--gap-min", type=float, default=0.1, help="least pause between alerts")
    parser.add_argument("--gap-max", type=float, default=0.25, help="most pause between alerts")
    args = parser.parse_args()
    if not 0 <= args.gap_min <= args.gap_max:
        parser.error("--gap-min must be between 0 and --gap-max")
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="carewatch-console-stream-") as workdir:
        report(asyncio.run(run(args, Path(workdir))), args)


if __name__ == "__main__":
    main()
