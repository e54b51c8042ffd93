"""Alert raised → every one of 50 staff consoles, under 10,000 beds of background telemetry.

Real parts throughout, each in its own process as in production: a real Mosquitto, the hub as
`carewatch hub --config …` (SQLite, real clock, its site's night window set around now so the
night rules are live), benchmarks/background_telemetry.py sending the bed-radar mix for `--beds`
beds at one reading per bed every `--reading-interval` s (10,000 beds every 5 s: 2,000
readings/s), and this process holding `--consoles` staff consoles: each its own user, logged in
through POST /api/login with its own session cookie, reading GET /api/stream and, as the real
console does (hub/web/console_views.js), polling GET /api/board every `--board-poll` s and 150 ms
after an alert arrives on its stream (`--board-poll 0`: no polling).

The background beds are split into wards (zones) of `--zone-beds` beds, as a 10,000-bed hub
serves many homes of one to a few hundred beds; console i is a nurse of ward i (round robin)
and of the zone `calls` where the alerts are raised, so that every console receives every alert.
`--zone-beds 0`: one ward of every bed, and every console sees the whole site.

Then `--alerts` alerts, each on a bed of its own, call buttons and falls in turn, published as a
gateway does (real wire format, QoS 1), `--gap-min`…`--gap-max` s apart (uniformly at random).
For every (alert, console) pair the arrival on the console's stream is timed twice, both on
this machine's clock: from the alert's `opened_at` (the moment the hub raised it) and from just
before the MQTT publish. A console only timestamps what it read; splitting lines and parsing wait
until the alerts have been sent, so that 50 readers in one process skew the arrivals as little
as possible.

    python benchmarks/console_stream.py
    python benchmarks/console_stream.py --consoles 50 --beds 10000 --alerts 200 --warmup 5
    python benchmarks/console_stream.py --board-poll 0   # the same without board loads

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
from collections.abc import Coroutine, Iterator, Sequence
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
from hub.access.auth import hash_password
from hub.core.clock import ScaledClock, SystemClock
from hub.core.store import Store
from hub.registry.models import SiteSpec
from hub.registry.service import RegistryService
from hub.watch.coverage import PolicyCoverage
from hub.watch.settings import WatchConfig, WatchPolicy
from tests.support.mosquitto import mosquitto

REPO: Final = Path(__file__).resolve().parent.parent
PASSWORD: Final = "console-bench-password"
WARD_PREFIX: Final = "ward-"
CALLS_ZONE: Final = "calls"
BOARD_SOON_S: Final = 0.15  # console_views.js: loadBoardSoon() after an alert arrives
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


@dataclass(frozen=True, slots=True)
class BoardPoll:
    started: float  # time.perf_counter() when the request was sent
    seconds: float  # until the whole answer was read
    status: int  # 0: no answer (connection error or timeout)
    size: int  # bytes of the answer's body
    beds: int  # tiles in the answer
    after_alert: bool  # loadBoardSoon() rather than the interval


@dataclass
class Console:
    """One staff console: its own client (cookie jar, connection) and its own stream."""

    username: str
    client: httpx.AsyncClient
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    polls: list[BoardPoll] = field(default_factory=list)
    alert_read: asyncio.Event = field(default_factory=asyncio.Event)

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
                if ALERT_LINE in chunk:
                    self.alert_read.set()

    async def load_board(self, after_alert: bool = False) -> None:
        """GET /api/board as console_views.js asks it: no site or zone, the caller's scope."""
        started = time.perf_counter()
        try:
            response = await self.client.get("/api/board")
        except httpx.HTTPError:
            seconds = time.perf_counter() - started
            self.polls.append(BoardPoll(started, seconds, 0, 0, 0, after_alert))
            return
        body = response.content
        seconds = time.perf_counter() - started
        beds = body.count(b'"bed":')
        self.polls.append(
            BoardPoll(started, seconds, response.status_code, len(body), beds, after_alert)
        )

    async def load_board_after_alerts(self) -> None:
        """loadBoardSoon(): 150 ms after the last of the alerts that arrive together."""
        loads: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self.alert_read.wait()
                self.alert_read.clear()
                with contextlib.suppress(TimeoutError):
                    while True:  # clearTimeout: another alert within 150 ms starts the wait again
                        await asyncio.wait_for(self.alert_read.wait(), BOARD_SOON_S)
                        self.alert_read.clear()
                start_load(loads, self.load_board(after_alert=True))
        finally:
            for task in loads:
                task.cancel()

    async def poll_board(self, every: float, first_after: float) -> None:
        """setInterval(loadBoard, every): a request per tick, whether or not the last answered."""
        loads: set[asyncio.Task[None]] = set()
        tick = time.perf_counter() + first_after
        try:
            while True:
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
                start_load(loads, self.load_board())
                tick += every
        finally:
            for task in loads:
                task.cancel()

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


def start_load(loads: set[asyncio.Task[None]], load: Coroutine[Any, Any, None]) -> None:
    """A load of its own, as a browser's fetch: never waited for by the next one."""
    task = asyncio.create_task(load)
    loads.add(task)
    task.add_done_callback(loads.discard)


@dataclass(frozen=True, slots=True)
class Sent:
    key: AlertKey
    published: float  # time.time() just before the MQTT publish


@dataclass
class Results:
    sent: list[Sent] = field(default_factory=list)
    arrivals: dict[str, dict[AlertKey, Arrival]] = field(default_factory=dict)
    stalls: list[Sample] = field(default_factory=list)
    polls: list[BoardPoll] = field(default_factory=list)  # sent during the measurement
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


def hub_config(host: str, port: int, database: Path, consoles: int, wards: int) -> dict[str, Any]:
    """The hub's configuration file; the registry is seeded into `database` beforehand."""
    password_hash = hash_password(PASSWORD)  # once: every console user shares the hash
    users = [
        {"username": console_name(i), "password_hash": password_hash, **staff_grant(i, wards)}
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


def ward_count(beds: int, zone_beds: int) -> int:
    """Wards of at most `zone_beds` beds; 0: one ward of every bed."""
    return -(-beds // zone_beds) if zone_beds > 0 else 0


def staff_grant(i: int, wards: int) -> dict[str, Any]:
    """The i-th nurse's scope (hub/access/permissions.py): a ward and the calls zone, or the whole
    site."""
    if wards == 0:
        return {"role": "staff", "sites": ["*"]}
    zones = [f"{SITE}/{WARD_PREFIX}{i % wards:03d}", f"{SITE}/{CALLS_ZONE}"]
    return {"role": "staff", "zones": zones}


def split_into_wards(spec: dict[str, Any], zone_beds: int) -> dict[str, Any]:
    """site_spec's one background ward (a room per bed) as wards of `zone_beds` rooms."""
    if zone_beds <= 0:
        return spec
    background, *others = spec["zones"]
    rooms = background["rooms"]
    wards = [
        {
            "id": f"{WARD_PREFIX}{n:03d}",
            "name": f"Ward {n}",
            "rooms": rooms[start : start + zone_beds],
        }
        for n, start in enumerate(range(0, len(rooms), zone_beds))
    ]
    return {**spec, "zones": [*wards, *others]}


async def seed_registry(database: Path, beds: int, alerts: int, zone_beds: int) -> None:
    """Write the site into the hub's database, as a first start from `sites:` would.

    Reading a 10,000-bed `sites:` list from YAML takes the hub about 20 s here; the database
    is the source of truth after the first start anyway.
    """
    spec = SiteSpec.model_validate(
        split_into_wards(site_spec(beds, [trigger_zone(alerts)]), zone_beds)
    )
    store = await Store.open(database)
    try:
        coverage = PolicyCoverage(WatchPolicy(WatchConfig()))
        await RegistryService.open(store, SystemClock(), [spec], rule_coverage=coverage)
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


def start_board_polls(consoles: Sequence[Console], every: float) -> list[asyncio.Task[None]]:
    """Each console's first load at a random moment of the first interval, as pages open."""
    if every <= 0:
        return []
    start = random.Random(3)
    return [
        task
        for console in consoles
        for task in (
            asyncio.create_task(console.poll_board(every, start.uniform(0, every))),
            asyncio.create_task(console.load_board_after_alerts()),
        )
    ]


def polls_between(consoles: Sequence[Console], began: float, ended: float) -> list[BoardPoll]:
    return [p for c in consoles for p in c.polls if began <= p.started <= ended]


async def measure(
    hub: HubProcess, broker: tuple[str, int], meter: CpuMeter, args: argparse.Namespace
) -> Results:
    results = Results()
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as web:
        await wait_broker_connected(web)
        consoles, readers = await open_consoles(hub.url, args.consoles)
        readers += start_board_polls(consoles, args.board_poll)
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
                ended = time.perf_counter()
                results.seconds = ended - began
                lag.cancel()
                sampler.cancel()
                after = await health(web)
                accepted = after["ingest"]["accepted"] - before["ingest"]["accepted"]
                results.background_rate = (accepted - len(results.sent)) / results.seconds
                results.arrivals = await collect(consoles, results.sent)
                results.polls = polls_between(consoles, began, ended)
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


def write_config(workdir: Path, broker: tuple[str, int], args: argparse.Namespace) -> Path:
    path = workdir / "hub.yaml"
    wards = ward_count(args.beds, args.zone_beds)
    path.write_text(yaml.safe_dump(hub_config(*broker, workdir / "hub.db", args.consoles, wards)))
    return path


async def run(args: argparse.Namespace, workdir: Path) -> Results:
    with mosquitto() as broker:
        address = (broker.host, broker.port)
        config = write_config(workdir, address, args)
        began = time.perf_counter()
        await seed_registry(workdir / "hub.db", args.beds, args.alerts, args.zone_beds)
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
    wards = ward_count(args.beds, args.zone_beds)
    scope = (
        f"{wards} wards of {args.zone_beds} beds; each console sees one ward and `{CALLS_ZONE}`"
        if wards
        else "one ward; every console sees the whole site"
    )
    print(f"  {scope}")
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
    print_board_polls(results, args)
    print_resources(results)
    print("  target (docs/architecture.md, fall frame → console stream): p50 ≤ 50 ms, p99 ≤ 250 ms")


def print_board_polls(results: Results, args: argparse.Namespace) -> None:
    if args.board_poll <= 0:
        print("  board polling: off")
        return
    polls = results.polls
    answered = [p for p in polls if p.status == 200]
    after_alerts = sum(1 for p in polls if p.after_alert)
    print(
        f"  GET /api/board every {args.board_poll:g} s per console and 150 ms after alerts: "
        f"{len(polls)} sent during the alerts ({len(polls) / results.seconds:.1f}/s, "
        f"{after_alerts} after alerts), {len(answered)} answered 200"
    )
    if not answered:
        return
    print(row("board answer (sent → body read)", [p.seconds * 1000 for p in answered]))
    sizes = sorted(p.size for p in answered)
    beds = sorted(p.beds for p in answered)
    print(
        f"  board answer: {percentile(sizes, 50) / 1024:.0f} KiB (max {sizes[-1] / 1024:.0f} KiB),"
        f" {percentile(beds, 50)} beds (max {beds[-1]}); "
        f"{sum(sizes) / results.seconds / 1024 / 1024:.1f} MiB/s to all consoles"
    )


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
    parser.add_argument(
        "--board-poll", type=float, default=3.0, help="s between board loads per console; 0: off"
    )
    parser.add_argument(
        "--zone-beds", type=int, default=200, help="beds per ward; 0: one ward, consoles see all"
    )
    args = parser.parse_args()
    if not 0 <= args.gap_min <= args.gap_max:
        parser.error("--gap-min must be between 0 and --gap-max")
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="carewatch-console-stream-") as workdir:
        report(asyncio.run(run(args, Path(workdir))), args)


if __name__ == "__main__":
    main()
