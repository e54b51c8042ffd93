"""Triggering reading → alert on the console stream, under 10,000 beds of background telemetry.

A real Mosquitto, the hub with SQLite on a night clock (from 23:00 UTC, real speed), an SSE
client reading /api/stream as the console does, and benchmarks/background_telemetry.py in its
own process sending the bed-radar mix for `--background-beds` beds at one reading per bed every
`--reading-interval` s (10,000 beds every 5 s: 2,000 readings/s), batched per gateway of 20.

Three paths, each to a bed of its own, timed from just before the MQTT publish of the
triggering batch (real wire format, QoS 1) to the alert's arrival on the stream:
- instant: a `call_button` event, then separately a `fall` event (one at a time, `--gap` apart);
- timer: an out-of-bed reading at night for a bed whose zone waits `--bed-exit-min` minutes
  (0.05 = 3 s) for the return; the figure is the arrival minus the configured wait.
  These are sent `--timer-gap` apart, so several timers are pending at once.

    python benchmarks/watch_latency.py --triggers 200 --background-beds 10000

Prints p50/p90/p99/max in milliseconds. Figures, not assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.watch_common import (
    BED_RADAR,
    BEDS_PER_GATEWAY,
    PASSWORD,
    SITE,
    CpuMeter,
    child_named,
    clock_offset,
    hub_config,
    night_clock,
    percentile,
    site_spec,
    start_telemetry,
)
from contract.wire import data_topic, encode_batch
from hub.app import Hub
from hub.core.clock import ScaledClock
from tests.support.mosquitto import mosquitto

ARRIVAL_TIMEOUT_S: Final = 10.0
Zone = tuple[dict[str, Any], list[dict[str, Any]], list[str]]
ArrivalKey = tuple[str, str]  # (rule, bed)
Sample = tuple[float, float]  # (perf_counter when sent, milliseconds)
LAG_TICK_S: Final = 0.01
LAG_REPORTED_S: Final = 0.1


def trigger_zone(beds: int) -> Zone:
    """Beds TR-00000… each with a fall radar and a call button, 20 beds to a gateway."""
    rooms, devices = [], []
    for i in range(beds):
        gateway, bed = f"tr-{i // BEDS_PER_GATEWAY:03d}", f"TR-{i:05d}"
        rooms.append({"id": f"tr{i}", "name": f"Room T{i}", "beds": [_bed("TR", i)]})
        devices += [
            {"id": f"tr-fall-{i}", "gateway": gateway, "profile": "seeed-mr60fda1", "bed": bed},
            {
                "id": f"tr-button-{i}",
                "gateway": gateway,
                "profile": "shelly-blu-button1",
                "bed": bed,
            },
        ]
    return _zone("calls", rooms, devices)


def timer_zone(beds: int) -> Zone:
    """Beds TM-00000… each with a bed radar, in the zone with a short bed-exit wait."""
    rooms, devices = [], []
    for i in range(beds):
        rooms.append({"id": f"tm{i}", "name": f"Room X{i}", "beds": [_bed("TM", i)]})
        devices.append(
            {
                "id": f"tm-radar-{i}",
                "gateway": f"tm-{i // BEDS_PER_GATEWAY:03d}",
                "profile": BED_RADAR,
                "bed": f"TM-{i:05d}",
            }
        )
    return _zone("exits", rooms, devices)


def _bed(prefix: str, i: int) -> dict[str, Any]:
    resident = {"code": f"{prefix}R-{i:05d}", "name": f"Resident {prefix}{i}"}
    return {"code": f"{prefix}-{i:05d}", "resident": resident}


def _zone(zone: str, rooms: list[dict[str, Any]], devices: list[dict[str, Any]]) -> Zone:
    gateways = sorted({device["gateway"] for device in devices})
    return {"id": zone, "name": zone.title(), "rooms": rooms}, devices, gateways


@dataclass
class Gateways:
    """Trigger gateways' outbox state: one epoch each, sequence numbers counting up."""

    client: aiomqtt.Client
    clock: ScaledClock
    epochs: dict[str, str] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    async def send(self, gateway: str, items: list[dict[str, object]]) -> None:
        epoch = self.epochs.setdefault(gateway, secrets.token_hex(4))
        seq = self.seqs.get(gateway, 1)
        self.seqs[gateway] = seq + len(items)
        payload = encode_batch(epoch, seq, 1, self.clock.now(), items)
        await self.client.publish(data_topic(SITE, gateway), payload, qos=1)


@dataclass
class Stream:
    """First arrival of each (rule, bed) alert on the console's live stream."""

    arrivals: dict[ArrivalKey, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("event: hello"):
                    self.ready.set()
                elif line.startswith('data: {"id"'):
                    alert = json.loads(line[6:])
                    if alert["state"] == "open" and alert["bed"] is not None:
                        self.arrivals.setdefault((alert["rule"], alert["bed"]), time.perf_counter())
                        self.arrived.set()

    async def wait_for(self, key: ArrivalKey, deadline: float) -> float | None:
        while key not in self.arrivals and time.perf_counter() < deadline:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), deadline - time.perf_counter())
        return self.arrivals.get(key)


def item(device: str, at: float, **what: object) -> dict[str, object]:
    return {"dev": device, "at": round(at, 3), **what}


async def instant_path(
    gateways: Gateways, stream: Stream, beds: int, event: str, device: str, gap: float
) -> list[Sample]:
    """Send `event` from each trigger bed's `device` in turn; milliseconds to the stream."""
    latencies: list[Sample] = []
    for i in range(beds):
        at = gateways.clock.now()
        sent = time.perf_counter()
        await gateways.send(
            f"tr-{i // BEDS_PER_GATEWAY:03d}", [item(device.format(i), at, event=event)]
        )
        arrival = await stream.wait_for((event, f"TR-{i:05d}"), sent + ARRIVAL_TIMEOUT_S)
        if arrival is None:
            print(
                f"no {event} alert for TR-{i:05d} within {ARRIVAL_TIMEOUT_S:.0f} s", file=sys.stderr
            )
        else:
            latencies.append((sent, (arrival - sent) * 1000))
        await asyncio.sleep(gap)
    return latencies


async def put_timer_beds_to_bed(gateways: Gateways, beds: int) -> None:
    at = gateways.clock.now()
    for start in range(0, beds, BEDS_PER_GATEWAY):
        items = [
            item(f"tm-radar-{i}", at, reading="occupancy", value=True)
            for i in range(start, min(start + BEDS_PER_GATEWAY, beds))
        ]
        await gateways.send(f"tm-{start // BEDS_PER_GATEWAY:03d}", items)


async def timer_path(
    gateways: Gateways, stream: Stream, beds: int, wait_s: float, gap: float
) -> list[Sample]:
    """Out of bed at night, bed after bed; milliseconds from due to the alert on the stream."""
    due: dict[str, float] = {}
    for i in range(beds):
        at = gateways.clock.now()
        sent = time.perf_counter()
        out = item(f"tm-radar-{i}", at, reading="occupancy", value=False)
        await gateways.send(f"tm-{i // BEDS_PER_GATEWAY:03d}", [out])
        # due, in the hub's time, is the sensed time as sent (rounded to 1 ms) plus the wait
        due[f"TM-{i:05d}"] = sent + (round(at, 3) - at) + wait_s
        await asyncio.sleep(gap)
    latencies: list[Sample] = []
    for bed, due_at in due.items():
        arrival = await stream.wait_for(("bed_exit", bed), due_at + ARRIVAL_TIMEOUT_S)
        if arrival is None:
            print(f"no bed_exit alert for {bed} within {ARRIVAL_TIMEOUT_S:.0f} s", file=sys.stderr)
        else:
            latencies.append((due_at, (arrival - due_at) * 1000))
    return latencies


@dataclass
class Results:
    paths: dict[str, list[Sample]] = field(default_factory=dict)
    stalls: list[Sample] = field(default_factory=list)
    began: float = 0.0  # perf_counter at the start of the measurement
    background_rate: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    start_s: float = 0.0


async def watch_loop(stalls: list[Sample]) -> None:
    """Record every time the event loop (the hub's, as it is in-process) was held up."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(LAG_TICK_S)
        late = time.perf_counter() - before - LAG_TICK_S
        if late > LAG_REPORTED_S:
            stalls.append((before, late * 1000))


async def run_paths(
    gateways: Gateways, stream: Stream, args: argparse.Namespace
) -> dict[str, list[Sample]]:
    return {
        "call_button": await instant_path(
            gateways, stream, args.triggers, "call_button", "tr-button-{}", args.gap
        ),
        "fall": await instant_path(gateways, stream, args.triggers, "fall", "tr-fall-{}", args.gap),
        "bed_exit (minus wait)": await timer_path(
            gateways, stream, args.timer_beds, args.bed_exit_min * 60, args.timer_gap
        ),
    }


async def measure(
    hub: Hub, clock: ScaledClock, meter: CpuMeter, args: argparse.Namespace
) -> Results:
    stream, results = Stream(), Results()
    async with (
        httpx.AsyncClient(base_url=hub.url, timeout=60) as web,
        aiomqtt.Client(hub.config.broker.host, hub.config.broker.port) as mqtt,
    ):
        login = await web.post("/api/login", json={"username": "nurse", "password": PASSWORD})
        login.raise_for_status()
        reader = asyncio.create_task(stream.read(web))
        await asyncio.wait_for(stream.ready.wait(), 10)
        gateways = Gateways(mqtt, clock)
        await put_timer_beds_to_bed(gateways, args.timer_beds)
        await asyncio.sleep(args.warmup)
        accepted, results.began = hub.ingest.accepted, time.perf_counter()
        lag = asyncio.create_task(watch_loop(results.stalls))
        meter.start()
        results.paths = await run_paths(gateways, stream, args)
        results.cpu = meter.stop()
        results.seconds = time.perf_counter() - results.began
        results.background_rate = (hub.ingest.accepted - accepted) / results.seconds
        lag.cancel()
        reader.cancel()
    return results


async def run(args: argparse.Namespace) -> Results:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-watch-latency-"))
    exits = f"{SITE}/exits"
    watch = {
        "zones": {
            f"{SITE}/calls": {"device_offline": False},
            exits: {"device_offline": False, "bed_exit_return_min": args.bed_exit_min},
        }
    }
    site = site_spec(
        args.background_beds, [trigger_zone(args.triggers), timer_zone(args.timer_beds)]
    )
    with mosquitto() as broker:
        config = hub_config(broker.host, broker.port, workdir / "hub.db", site, watch)
        clock = night_clock()
        began = time.perf_counter()
        hub = await Hub.start(config, clock)
        start_s = time.perf_counter() - began
        background = start_telemetry(
            broker.host,
            broker.port,
            args.background_beds,
            *("--interval", str(args.reading_interval)),
            *("--clock-offset", f"{clock_offset(clock):.6f}"),
        )
        try:
            await asyncio.wait_for(hub.mqtt.connected.wait(), 30)
            meter = CpuMeter(
                {
                    "hub": psutil.Process(),
                    "background publisher": psutil.Process(background.pid),
                    "mosquitto": child_named("mosquitto"),
                }
            )
            results = await measure(hub, clock, meter, args)
            results.counters, results.start_s = hub.ingest.counters(), start_s
        finally:
            background.terminate()
            background.communicate(timeout=30)
            await hub.stop()
    return results


def report(results: Results, args: argparse.Namespace) -> None:
    print(
        f"triggering reading → alert on /api/stream, background: {args.background_beds:,} beds "
        f"(bed-radar mix, one reading per bed every {args.reading_interval:g} s), night clock"
    )
    print(
        f"  background ingested during the measurement: {results.background_rate:,.0f} readings/s"
        f" over {results.seconds:.0f} s"
    )
    cores = "   ".join(f"{name} {cpu / results.seconds:.2f}" for name, cpu in results.cpu.items())
    print(f"  CPU (cores)  {cores}")
    for path, samples in results.paths.items():
        print_path(path, samples, results.began)
    stalls = ", ".join(f"{ms:.0f} ms at +{at - results.began:.1f} s" for at, ms in results.stalls)
    print(f"  event loop held up > {LAG_REPORTED_S * 1000:.0f} ms: {stalls or 'never'}")
    print(f"  bed-exit wait configured: {args.bed_exit_min * 60:g} s ({args.bed_exit_min} min)")
    print(f"  hub start: {results.start_s:.1f} s; ingest counters: {results.counters}")
    print("  targets (docs/architecture.md, fall frame → console): p50 ≤ 50 ms, p99 ≤ 250 ms")


def print_path(path: str, samples: Sequence[Sample], began: float) -> None:
    if not samples:
        print(f"  {path:22} no alert arrived")
        return
    ordered = sorted(ms for _, ms in samples)
    print(
        f"  {path:22} n={len(ordered):<4} p50 {percentile(ordered, 50):7.1f} ms   "
        f"p90 {percentile(ordered, 90):7.1f} ms   p99 {percentile(ordered, 99):7.1f} ms   "
        f"max {ordered[-1]:7.1f} ms   mean {statistics.fmean(ordered):7.1f} ms"
    )
    worst = sorted(samples, key=lambda sample: -sample[1])[:3]
    print(
        "  "
        + " " * 22
        + " slowest: "
        + ", ".join(f"{ms:.0f} ms at +{at - began:.1f} s" for at, ms in worst)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=200, help="call buttons, then falls")
    parser.add_argument("--timer-beds", type=int, default=100, help="out-of-bed timer triggers")
    parser.add_argument("--background-beds", type=int, default=10_000)
    parser.add_argument("--reading-interval", type=float, default=5.0, help="s per bed")
    parser.add_argument("--bed-exit-min", type=float, default=0.05, help="wait for return")
    parser.add_argument("--gap", type=float, default=0.05, help="pause between triggers, s")
    parser.add_argument("--timer-gap", type=float, default=0.1, help="between out-of-bed, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="s of background first")
    logging.basicConfig(level=logging.ERROR)
    args = parser.parse_args()
    report(asyncio.run(run(args)), args)


if __name__ == "__main__":
    main()
