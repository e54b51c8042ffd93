"""Rule evaluation throughput: 10,000 beds of bed-radar telemetry into one hub, as fast as it takes.

One Mosquitto, one run, three phases:
1. raw: benchmarks/background_telemetry.py publishes the same payloads flat out (QoS 1) to a
   topic that only benchmarks/raw_counter.py, a plain subscriber, counts: what this broker
   delivers to one subscriber on this machine right now.
2. hub: the same generator publishes to the gateways' data topics, at most `--window` readings
   ahead of what the hub has accepted (the count is fed to the publisher's stdin), so the hub
   is never idle and its backlog stays bounded. Readings/s come from `hub.ingest.pipeline` counters
   over the window; CPU from the processes' own counters. The hub runs on a night clock (from
   23:00 UTC, real speed) so that out-of-bed readings start bed-exit timers; out-of-range rates
   start vital-signs timers (see the bed-radar mix in background_telemetry.py).
3. raw again, after the hub has stopped, to show how much the machine moved meanwhile.

    python benchmarks/watch_throughput.py --beds 10000 --seconds 30
    python benchmarks/watch_throughput.py --py-spy /tmp/hub-stacks.txt   # sample the window
    python benchmarks/watch_throughput.py --cprofile /tmp/hub.prof        # or cProfile it

Prints figures; asserts nothing (docs/architecture.md, Targets: ≥ 20,000 readings/s in one process,
reported as a ratio of the broker's raw throughput in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.watch_common import (
    HERE,
    CpuMeter,
    child_named,
    clock_offset,
    hub_config,
    night_clock,
    site_spec,
    start_telemetry,
    store_size,
)
from hub.app import Hub
from hub.core.clock import ScaledClock
from hub.core.timers import Timers
from tests.support.mosquitto import MosquittoBroker, mosquitto

RAW_TOPIC: Final = "bench-raw/batches"
CREDIT_EVERY_S: Final = 0.02
TOP_FRAMES: Final = 20


@dataclass(frozen=True, slots=True)
class RawResult:
    readings_per_s: float
    messages_per_s: float
    counter_cpu: float  # cores
    publisher_cpu: float  # cores, over the publisher's whole run


@dataclass
class TimerTally:
    """Timer starts and cancellations by kind: the waiting rules at work (instrumentation)."""

    set: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)

    def attach(self, timers: Timers) -> None:
        original_set, original_cancel = timers.set, timers.cancel

        async def counted_set(
            kind: str, key: str, due_at: float, payload: dict[str, Any], **options: Any
        ) -> None:
            self.set[f"{kind} (deferred)" if options.get("deferred") else kind] += 1
            await original_set(kind, key, due_at, payload, **options)

        async def counted_cancel(kind: str, key: str) -> bool:
            done = await original_cancel(kind, key)
            self.cancelled[kind] += done
            return done

        setattr(timers, "set", counted_set)  # noqa: B010  benchmark instrumentation only
        setattr(timers, "cancel", counted_cancel)  # noqa: B010

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.set), Counter(self.cancelled)


@dataclass
class Stopwatch:
    """Calls and wall time of chosen hub coroutines (instrumentation): where a batch's time goes.

    The hub handles one MQTT message at a time, so wall time inside these awaits is, nearly all
    of it, time the next message waits for.
    """

    calls: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def wrap(self, owner: object, method: str, label: str) -> None:
        original = getattr(owner, method)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.calls[label] += 1
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, method, timed)

    def attach(self, hub: Hub) -> None:
        for owner, method in (
            (hub.ingest, "handle_many"),
            (hub.ingest.records, "sequence_mark"),
            (hub.ingest.records, "save_batches"),
            (hub.watch, "on_item"),
            (hub.watch, "on_gateway_heard"),
            (hub.timers, "set"),
            (hub.timers, "cancel"),
        ):
            self.wrap(owner, method, f"{type(owner).__name__}.{method}")

    def snapshot(self) -> tuple[Counter[str], dict[str, float]]:
        return Counter(self.calls), dict(self.seconds)


@dataclass
class Probes:
    """Everything read before and after the window; `delta()` is what happened in it."""

    timers: TimerTally = field(default_factory=TimerTally)
    stopwatch: Stopwatch = field(default_factory=Stopwatch)

    def attach(self, hub: Hub) -> None:
        self.timers.attach(hub.timers)
        self.stopwatch.attach(hub)

    async def read(self, hub: Hub) -> dict[str, Any]:
        timers_set, timers_cancelled = self.timers.snapshot()
        calls, seconds = self.stopwatch.snapshot()
        return {
            "accepted": hub.ingest.accepted,
            "counters": Counter(hub.ingest.counters()),
            "timers_set": timers_set,
            "timers_cancelled": timers_cancelled,
            "timers_fired": hub.timers.fired,
            "alerts_opened": await hub.alerts.records.count(),
            "calls": calls,
            "call_seconds": seconds,
            "at": time.perf_counter(),
        }


@dataclass
class HubResult:
    seconds: float
    accepted: int
    counters: Counter[str]
    timers_set: Counter[str]
    timers_cancelled: Counter[str]
    timers_fired: int
    alerts_opened: int
    calls: Counter[str]
    call_seconds: dict[str, float]
    cpu: dict[str, float] = field(default_factory=dict)
    start_s: float = 0.0
    store_bytes: int = 0
    stored_readings: int = 0

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> HubResult:
        delta = {name: _minus(after[name], before[name]) for name in after if name != "at"}
        return cls(seconds=after["at"] - before["at"], **delta)


def _minus(after: Any, before: Any) -> Any:
    if isinstance(after, Counter):
        return after - before
    if isinstance(after, dict):
        return {key: value - before.get(key, 0.0) for key, value in after.items()}
    return after - before


# --- raw phase ------------------------------------------------------------------------------


def raw_phase(broker: MosquittoBroker, args: argparse.Namespace) -> RawResult:
    host, port = broker.host, broker.port
    counter = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "raw_counter.py"),
            *("--host", host, "--port", str(port), "--topic", RAW_TOPIC),
            *("--warmup", str(args.warmup), "--seconds", str(args.seconds)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert counter.stdout is not None
    if counter.stdout.readline().strip() != "ready":
        raise SystemExit("the raw counter did not subscribe")
    publisher = start_telemetry(
        host,
        port,
        args.beds,
        *("--flat-out", "--raw-topic", RAW_TOPIC),
        *("--seconds", str(args.warmup + args.seconds + 3)),
    )
    counted = json.loads(counter.stdout.readline())
    counter.wait(30)
    published = json.loads(publisher.communicate(timeout=60)[0])
    seconds = float(counted["seconds"])
    return RawResult(
        counted["readings"] / seconds,
        counted["messages"] / seconds,
        counted["cpu_s"] / seconds,
        published["cpu_s"] / published["seconds"],
    )


# --- hub phase ------------------------------------------------------------------------------


async def feed_credit(hub: Hub, publisher: subprocess.Popen[str]) -> None:
    """Tell the publisher, fifty times a second, how many readings the hub has accepted."""
    assert publisher.stdin is not None
    while True:
        publisher.stdin.write(f"{hub.ingest.accepted}\n")
        publisher.stdin.flush()
        await asyncio.sleep(CREDIT_EVERY_S)


async def wait_accepting(hub: Hub, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while hub.ingest.accepted == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"the hub accepted nothing: {hub.ingest.counters()}")
        await asyncio.sleep(0.1)


def start_py_spy(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            *("--pid", str(os.getpid()), "--duration", str(round(seconds))),
            *("--rate", "250", "--format", "raw", "--output", str(path), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
    )


async def measure_window(
    hub: Hub, probes: Probes, meter: CpuMeter, args: argparse.Namespace
) -> HubResult:
    profiler = cProfile.Profile() if args.cprofile else None
    spy = start_py_spy(args.py_spy, args.seconds) if args.py_spy else None
    before = await probes.read(hub)
    meter.start()
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(args.seconds)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.cprofile)
    cpu = meter.stop()
    result = HubResult.between(before, await probes.read(hub))
    result.cpu = cpu
    if spy is not None:
        await asyncio.to_thread(spy.wait, 60)
    return result


async def hub_phase(broker: MosquittoBroker, database: Path, args: argparse.Namespace) -> HubResult:
    clock = night_clock()
    config = hub_config(broker.host, broker.port, database, site_spec(args.beds))
    began = time.perf_counter()
    hub = await Hub.start(config, clock)
    start_s = time.perf_counter() - began
    probes = Probes()
    probes.attach(hub)
    publisher = publish_to_hub(broker, clock, args)
    feeder = asyncio.create_task(feed_credit(hub, publisher))
    try:
        await wait_accepting(hub)
        await asyncio.sleep(args.warmup)
        meter = CpuMeter(
            {
                "hub": psutil.Process(),
                "publisher": psutil.Process(publisher.pid),
                "mosquitto": child_named("mosquitto"),
            }
        )
        result = await measure_window(hub, probes, meter, args)
    finally:
        feeder.cancel()
        publisher.terminate()
        publisher.communicate(timeout=30)
        stored = await hub.ingest.records.count_rows("readings")
        await hub.stop()
    result.start_s, result.stored_readings = start_s, stored
    return result


def publish_to_hub(
    broker: MosquittoBroker, clock: ScaledClock, args: argparse.Namespace
) -> subprocess.Popen[str]:
    return start_telemetry(
        broker.host,
        broker.port,
        args.beds,
        *("--flat-out", "--credit-stdin", "--window", str(args.window)),
        *("--batch-items", str(args.batch_items)),
        *("--clock-offset", f"{clock_offset(clock):.6f}"),
        stdin=subprocess.PIPE,
    )


# --- report ---------------------------------------------------------------------------------


def report(
    args: argparse.Namespace, raw: list[RawResult], result: HubResult, spy: Path | None
) -> None:
    rate = result.accepted / result.seconds
    raw_mean = sum(r.readings_per_s for r in raw) / len(raw)
    print(
        f"watch throughput: {args.beds:,} beds, bed-radar mix, {args.batch_items} readings per "
        f"batch, window {result.seconds:.1f} s after {args.warmup:.0f} s warm-up, night clock"
    )
    for label, r in zip(("before", "after"), raw, strict=False):
        print(
            f"  raw broker, {label:6}   {r.readings_per_s:>10,.0f} readings/s "
            f"({r.messages_per_s:,.0f} messages/s; CPU: subscriber {r.counter_cpu:.2f}, "
            f"publisher {r.publisher_cpu:.2f} cores)"
        )
    print(f"  hub ingested+evaluated {rate:>10,.0f} readings/s = {rate / raw_mean:.3f} of raw")
    cores = "   ".join(f"{name} {cpu / result.seconds:.2f}" for name, cpu in result.cpu.items())
    print(f"  CPU (cores)  {cores}")
    print(f"  per reading  {result.cpu['hub'] / max(result.accepted, 1) * 1e6:.0f} µs of hub CPU")
    print(f"  timers set        {_kinds(result.timers_set)}")
    print(f"  timers cancelled  {_kinds(result.timers_cancelled)}")
    print(f"  timers fired {result.timers_fired}, alerts opened {result.alerts_opened}")
    print(f"  ingest counters over the window: {dict(result.counters)}")
    print_breakdown(result)
    size = result.store_bytes
    print(
        f"  store: {size / 1e6:,.1f} MB (db + WAL) for {result.stored_readings:,} readings "
        f"= {size / max(result.stored_readings, 1):.0f} bytes/reading"
    )
    print(f"  hub start with {args.beds:,} beds: {result.start_s:.1f} s")
    print("  target (docs/architecture.md): ≥ 20,000 readings/s sustained in one process")
    if spy is not None and spy.exists():
        print_collapsed(spy)
    if args.cprofile:
        print(f"\n  cProfile of the window (event-loop thread), top {TOP_FRAMES} by own time:")
        pstats.Stats(str(args.cprofile)).sort_stats("tottime").print_stats(TOP_FRAMES)


def print_breakdown(result: HubResult) -> None:
    print("  where the hub's time went (wall time inside each await, nested):")
    for label, seconds in sorted(result.call_seconds.items(), key=lambda kv: -kv[1]):
        calls, share = result.calls[label], seconds / result.seconds
        print(
            f"    {label:24} {calls / result.seconds:>8,.0f} calls/s  "
            f"{seconds / max(calls, 1) * 1e6:>7,.0f} µs each  {share:6.1%} of wall"
        )


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n:,}" for kind, n in counts.most_common()) or "none"


def print_collapsed(path: Path) -> None:
    """Summarise py-spy's collapsed stacks: own and total samples per function, all threads."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame.split(" (")[0] + _where(frame) for frame in stack.split(";")]
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"\n  py-spy, {samples:,} samples (all threads, idle excluded); top own time:")
    for frame, n in own.most_common(TOP_FRAMES):
        print(f"    {n / samples:6.1%}  {frame}")
    print("  top total time (hub frames):")
    hub_frames = [(f, n) for f, n in total.most_common() if "hub/" in f or "edge/" in f]
    for frame, n in hub_frames[:TOP_FRAMES]:
        print(f"    {n / samples:6.1%}  {frame}")


def _where(frame: str) -> str:
    """`(hub/core/store.py)` from py-spy's `name (path/to/hub/core/store.py:123)`."""
    if " (" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")").rsplit(":", 1)[0]
    return f" ({'/'.join(Path(location).parts[-2:])})"


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-watch-"))
    database = workdir / "hub.db"
    with mosquitto() as broker:
        raw = [raw_phase(broker, args)]
        result = await hub_phase(broker, database, args)
        result.store_bytes = store_size(database)
        raw.append(raw_phase(broker, args))
    report(args, raw, result, args.py_spy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="s before the window")
    parser.add_argument("--batch-items", type=int, default=20, help="readings per batch")
    parser.add_argument("--window", type=int, default=20_000, help="readings ahead of the hub")
    parser.add_argument("--py-spy", type=Path, default=None, help="collapsed stacks to this file")
    parser.add_argument("--cprofile", type=Path, default=None, help="cProfile stats to this file")
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
