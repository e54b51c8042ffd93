"""The edge agent's memory and CPU with 20 simulated devices at realistic rates.

One `carewatch edge` process (as on a gateway) reads 10 MR60FDA1 radars behind pseudo-terminals
and 5 encrypted BTHome call buttons plus 5 BTHome sensors over the simulated BLE air socket (see
benchmarks/edge_fleet.py for the rates), and publishes to a real Mosquitto, where a subscriber
counts the items. Measured from /proc/PID: RSS (VmRSS, sampled every second; VmHWM is the
kernel's peak) and CPU as a share of one core ((utime + stime) / wall time over the window).

    python benchmarks/edge_resources.py               # 60 s
    python benchmarks/edge_resources.py --seconds 300

Targets (docs/architecture.md): ≤ 60 MB RSS, ≤ 5 % of one core. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.edge_fleet import (
    ENTRY_POINTS,
    GATEWAY,
    RADARS,
    SITE,
    Traffic,
    start_edge,
    write_edge_config,
)
from contract.wire import data_topic, status_topic
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.support.mosquitto import mosquitto

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM from /proc/PID/status, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class ItemCounter:
    """Subscribes to the gateway's data topic and counts delivered items."""

    def __init__(self) -> None:
        self.items = 0
        self.online = asyncio.Event()

    async def run(self, host: str, port: int) -> None:
        async with aiomqtt.Client(host, port) as client:
            topics = [data_topic(SITE, GATEWAY), status_topic(SITE, GATEWAY)]
            await client.subscribe([(topic, 1) for topic in topics])
            async for message in client.messages:
                body = json.loads(bytes(message.payload))
                if "items" in body:
                    self.items += len(body["items"])
                elif body.get("state") == "online":
                    self.online.set()


async def sample_rss(pid: int, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(memory_kb(pid)["VmRSS"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-edge-bench-"))
    radars = [MR60FDA1Simulator() for _ in range(RADARS)]
    air = workdir / "air.sock"
    config = workdir / "edge.yaml"
    with mosquitto() as broker:
        write_edge_config(
            config, broker.host, broker.port, workdir / "outbox.db", air, [r.port for r in radars]
        )
        counter = ItemCounter()
        listener = asyncio.create_task(counter.run(broker.host, broker.port))
        edge = start_edge(config, workdir / "edge.log", args.entry)
        try:
            await asyncio.wait_for(counter.online.wait(), 30)
            while not air.exists():  # noqa: ASYNC110 - a file appearing has no event
                await asyncio.sleep(0.05)
            traffic = Traffic(radars, air)
            driver = asyncio.create_task(traffic.run(args.warmup + args.seconds))
            await asyncio.sleep(args.warmup)
            samples: list[int] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(edge.pid, samples, stop))
            cpu0, wall0, items0 = cpu_seconds(edge.pid), time.monotonic(), counter.items
            await driver
            cpu1, wall1, items1 = cpu_seconds(edge.pid), time.monotonic(), counter.items
            stop.set()
            await sampler
            peak = memory_kb(edge.pid)["VmHWM"]
        finally:
            edge.terminate()
            edge.wait(15)
            listener.cancel()
            for radar in radars:
                radar.close()
    window = wall1 - wall0
    report(args, samples, peak, (cpu1 - cpu0) / window, items1 - items0, traffic, window)


def report(
    args: argparse.Namespace,
    samples: list[int],
    peak_kb: int,
    cpu_share: float,
    items: int,
    traffic: Traffic,
    window: float,
) -> None:
    print(
        f"edge agent ({args.entry}), 20 devices, {window:.0f} s measured "
        f"after {args.warmup:.0f} s warm-up"
    )
    print("  sent:", ", ".join(f"{n} {what}" for what, n in sorted(traffic.sent.items())))
    print(f"  items published and delivered in the window: {items} ({items / window:.1f}/s)")
    print(
        f"  RSS: mean {statistics.mean(samples) / 1024:.1f} MB, "
        f"max sampled {max(samples) / 1024:.1f} MB, VmHWM {peak_kb / 1024:.1f} MB "
        "(target <= 60 MB)"
    )
    print(f"  CPU: {cpu_share * 100:.2f} % of one core (target <= 5 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--entry",
        choices=sorted(ENTRY_POINTS),
        default="cli",
        help="start the agent as `carewatch edge` (cli) or `python -m edge.agent` (module)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
