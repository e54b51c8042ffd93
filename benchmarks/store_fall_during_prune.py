"""Fall → console stream while the hub's upkeep prunes and rolls up a backlog, and without it.

benchmarks/fall_to_console.py's measurement, imported and unchanged (MR60FDA1 simulators behind
pseudo-terminals, `carewatch edge` agents of 20 radars each, a real Mosquitto, the hub, and an
SSE client on /api/stream; `--falls` falls, each to another bed, timed from os.write() to the
alert on the stream), twice per database, in one run:

- quiet: a fresh store;
- busy: the same, on a store pre-filled with `--backlog` readings (default 2,000,000: about a
  day of a 100-bed home at the fleet's rate, the mix of benchmarks/store_disk.py) received 20
  days ago and never rolled up, written through ingest's own write before the hub starts. With
  retention raw_days 14, every_s 1 and rollup_every_s 1 (both phases), the hub's upkeep rolls
  them all up, a step of 5,000 samples at a time, then prunes them: on SQLite by deleting a
  range of ids a step; on PostgreSQL by dropping their day partitions, made for them as the
  upkeep would have made them on those days.

How much the upkeep did during the falls (samples rolled up and pruned, and what it still had
to do when the last fall arrived) is printed for each phase: a busy phase whose upkeep ran out
of work before the falls ended measured less than it says (give a larger `--backlog`). So is
how long each call held the database's one thread during the falls (every statement and
transaction of the hub goes through `Database.call`), by the work done: an alarm's writes wait
for whatever holds the thread.

`--background-beds N` adds benchmarks/background_telemetry.py's telemetry, as in
fall_to_console.py, to both phases.

    python benchmarks/store_fall_during_prune.py --falls 200                     # both databases
    python benchmarks/store_fall_during_prune.py --falls 200 --database sqlite
    python benchmarks/store_fall_during_prune.py --falls 200 --background-beds 10000 --warmup 5
    python benchmarks/store_fall_during_prune.py --falls 5 --backlog 200000  # smoke run, 1 min

Prints p50/p90/p99/max in milliseconds; asserts nothing (docs/architecture.md, Targets: fall →
console p50 ≤ 50 ms, p99 ≤ 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fall_to_console import (
    PASSWORD,
    measure,
    registry,
    start_background,
    start_edges,
    wait_connected,
)
from benchmarks.store_disk import HONEST_POSTGRES, READINGS_PER_BED_DAY, Fleet
from benchmarks.watch_common import percentile
from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig
from hub.core.store import Store
from hub.telemetry import records, rollups
from hub.telemetry.records import ROLLED_UP, TelemetryRecords
from hub.telemetry.settings import DAY_S
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.postgres import postgres

BACKENDS: Final = ("sqlite", "postgresql")
RAW_DAYS: Final = 14
BACKLOG_AGE_DAYS: Final = 20
RETENTION: Final = {"raw_days": RAW_DAYS, "every_s": 1, "rollup_every_s": 1}
PREFILL_SECONDS: Final = 60  # simulated seconds of the backlog per write
TOP_WORK: Final = 5


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the upkeep has still to do: samples not rolled up, samples older than raw_days."""

    rolled_up_to: int
    not_rolled_up: int
    old: int


class ThreadHolds:
    """How long each piece of work held the database's one thread (instrumentation: every
    statement and transaction goes through `Database.call`), while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.seconds: list[float] = []
        self.by_work: dict[str, list[float]] = {}

    def attach(self, hub: Hub) -> None:
        db = hub.store.db
        original = db.call

        async def timed(work: Callable[..., Any], *args: Any) -> Any:
            def held(connection: Any, *inner: Any) -> Any:
                began = time.perf_counter()
                try:
                    return work(connection, *inner)
                finally:
                    if self.on:
                        seconds = time.perf_counter() - began
                        self.seconds.append(seconds)
                        self.by_work.setdefault(_work_name(work, inner), []).append(seconds)

            return await original(held, *args)

        setattr(db, "call", timed)  # noqa: B010  benchmark instrumentation only


def _work_name(work: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """`Maintenance._roll_up` for the transaction a Store.run(...) of the upkeep hands over."""
    if getattr(work, "__name__", "") == "_transaction" and args:  # Store.run(work): the work
        work = args[0]
    while isinstance(work, partial):
        work = work.func
    return str(getattr(work, "__qualname__", repr(work))).replace(".<locals>.<lambda>", "")


@dataclass(frozen=True, slots=True)
class Phase:
    backend: str
    busy: bool
    latencies: list[float]
    window_s: float
    start_s: float
    prefill_s: float
    before: Backlog
    after: Backlog
    holds: list[float]
    by_work: dict[str, list[float]]


async def prefill(target: Path | str, readings: int, beds: int) -> float:
    """`readings` of `beds` beds' fleet mix, received from BACKLOG_AGE_DAYS ago, not rolled up;
    the seconds it took."""
    began = time.perf_counter()
    per_second = READINGS_PER_BED_DAY / DAY_S * beds
    seconds = math.ceil(readings / per_second)
    start = rollups.start_of(time.time() - BACKLOG_AGE_DAYS * DAY_S, 3_600)
    store = await Store.open(target)
    try:
        telemetry = TelemetryRecords(store)
        await telemetry.create()
        if store.db.dialect == "postgresql":
            day = rollups.start_of(start, int(DAY_S))
            while day < start + seconds + 1:
                await store.run(partial(records.make_day_partition, day=day))
                day += int(DAY_S)
        fleet = Fleet(beds, float(start))
        for tick in range(0, seconds, PREFILL_SECONDS):
            await telemetry.save_batches(
                list(fleet.batches(tick, min(PREFILL_SECONDS, seconds - tick)))
            )
    finally:
        await store.close()
    return time.perf_counter() - began


async def backlog(hub: Hub) -> Backlog:
    cutoff = time.time() - RAW_DAYS * DAY_S
    db = hub.store.db
    marks = await db.execute_fetchall(
        "SELECT value FROM telemetry_marks WHERE name = ?", (ROLLED_UP,)
    )
    mark = int(marks[0][0]) if marks else 0
    rows = await db.execute_fetchall(
        "SELECT (SELECT count(*) FROM samples WHERE id > ?), "
        "(SELECT count(*) FROM samples WHERE received_at < ?)",
        (mark, cutoff),
    )
    return Backlog(mark, int(rows[0][0]), int(rows[0][1]))


def config(
    broker: MosquittoBroker, target: Path | str, client_id: str, args: argparse.Namespace
) -> HubConfig:
    return HubConfig.model_validate(
        {
            "broker": {"host": broker.host, "port": broker.port, "client_id": client_id},
            "database": str(target),
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
            "retention": RETENTION,
        }
    )


async def phase(
    broker: MosquittoBroker,
    backend: str,
    target: Path | str,
    busy: bool,
    workdir: Path,
    args: argparse.Namespace,
) -> Phase:
    name = f"{backend}-{'busy' if busy else 'quiet'}"
    prefill_s = await prefill(target, args.backlog, args.backlog_beds) if busy else 0.0
    began = time.perf_counter()
    hub = await Hub.start(config(broker, target, f"bench-hub-{name}", args))
    start_s = time.perf_counter() - began
    holds = ThreadHolds()
    holds.attach(hub)
    edges_dir = workdir / name
    edges_dir.mkdir()
    radars = [MR60FDA1Simulator() for _ in range(args.falls)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        edges = start_edges(radars, broker.host, broker.port, edges_dir)
        processes += edges
        if args.background_beds:
            processes.append(
                start_background(
                    args.background_beds, args.reading_interval, False, broker.host, broker.port
                )
            )
        await wait_connected(hub, len(edges))
        await asyncio.sleep(args.warmup)
        before = await backlog(hub)
        measured, holds.on = time.perf_counter(), True
        latencies = await measure(hub, radars, args.gap)
        window_s, holds.on = time.perf_counter() - measured, False
        after = await backlog(hub)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 10)
        for radar in radars:
            radar.close()
        await hub.stop()
    found = Phase(
        backend,
        busy,
        latencies,
        window_s,
        start_s,
        prefill_s,
        before,
        after,
        holds.seconds,
        holds.by_work,
    )
    print_phase(found, args)
    return found


def print_phase(found: Phase, args: argparse.Namespace) -> None:
    label = "busy upkeep" if found.busy else "quiet store"
    ordered = sorted(found.latencies)
    print(
        f"  {found.backend:10} {label}: {len(ordered)}/{args.falls} falls over "
        f"{found.window_s:.1f} s (hub start {found.start_s:.1f} s"
        + (f", backlog written in {found.prefill_s:.0f} s" if found.busy else "")
        + ")",
        flush=True,
    )
    if ordered:
        print(
            f"    p50 {percentile(ordered, 50):7.1f} ms   p90 {percentile(ordered, 90):7.1f} ms   "
            f"p99 {percentile(ordered, 99):7.1f} ms   max {ordered[-1]:7.1f} ms   "
            f"mean {statistics.fmean(ordered):7.1f} ms",
            flush=True,
        )
    before, after = found.before, found.after
    rolled = after.rolled_up_to - before.rolled_up_to
    pruned = before.old - after.old
    print(
        f"    upkeep during the falls: rolled up to sample {after.rolled_up_to:,} "
        f"(+{rolled:,} ids), pruned {pruned:,} old samples; still to do when the last fall "
        f"arrived: {after.not_rolled_up:,} not rolled up, {after.old:,} older than "
        f"{RAW_DAYS} days",
        flush=True,
    )
    if found.holds:
        held = sorted(h * 1000 for h in found.holds)
        print(
            f"    the database thread, during the falls: busy {sum(held) / 10 / found.window_s:.0f}"
            f"% of the time, {len(held):,} calls: p50 {percentile(held, 50):.1f} ms, "
            f"p99 {percentile(held, 99):.1f} ms, longest {held[-1]:.1f} ms",
            flush=True,
        )
        heaviest = sorted(found.by_work.items(), key=lambda kv: -sum(kv[1]))[:TOP_WORK]
        for work, seconds in heaviest:
            print(
                f"      {work:40} {len(seconds):6,} calls, {sum(seconds):6.2f} s, "
                f"longest {max(seconds) * 1000:6.1f} ms",
                flush=True,
            )
    if found.busy and after.not_rolled_up + after.old < args.backlog // 100:
        print(
            "    (the upkeep ran out of backlog before the falls ended: give a larger --backlog)",
            flush=True,
        )


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"\nfall frame → console stream, {args.falls} falls, background beds "
        f"{args.background_beds}; busy: {args.backlog:,} readings received "
        f"{BACKLOG_AGE_DAYS} days ago, not rolled up, retention {RETENTION}"
    )
    for backend in dict.fromkeys(p.backend for p in phases):
        for found in (p for p in phases if p.backend == backend):
            ordered = sorted(found.latencies) or [math.nan]
            label = "busy upkeep" if found.busy else "quiet store"
            print(
                f"  {backend:10} {label}:  p50 {percentile(ordered, 50):7.1f} ms   "
                f"p99 {percentile(ordered, 99):7.1f} ms   max {ordered[-1]:7.1f} ms   "
                f"({len(found.latencies)}/{args.falls} falls)"
            )
    print("  targets (docs/architecture.md): p50 ≤ 50 ms, p99 ≤ 250 ms")


async def run(args: argparse.Namespace) -> None:
    backends = BACKENDS if args.database == "both" else (args.database,)
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-fall-prune-"))
    phases: list[Phase] = []
    try:
        with mosquitto() as broker, contextlib.ExitStack() as stack:
            for backend in backends:
                server = (
                    stack.enter_context(postgres(settings=HONEST_POSTGRES))
                    if backend == "postgresql"
                    else None
                )
                for busy in (False, True):
                    target: Path | str
                    if server is None:
                        target = workdir / f"hub-{'busy' if busy else 'quiet'}.db"
                    else:
                        target = server.create_database(f"carewatch_{'busy' if busy else 'quiet'}")
                    phases.append(await phase(broker, backend, target, busy, workdir, args))
                stack.close()  # the PostgreSQL server, once its phases are done
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(phases, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--falls", type=int, default=200)
    parser.add_argument(
        "--backlog", type=int, default=2_000_000, help="old readings, not rolled up"
    )
    parser.add_argument(
        "--backlog-beds", type=int, default=100, help="beds whose readings the backlog holds"
    )
    parser.add_argument("--background-beds", type=int, default=0)
    parser.add_argument(
        "--reading-interval",
        type=float,
        default=5.0,
        help="seconds between readings per background bed (default 5)",
    )
    parser.add_argument("--gap", type=float, default=0.02, help="pause between falls, s")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    logging.basicConfig(level=logging.ERROR)
    # No roster: every fall reaches nobody, and would log NOBODY REACHED at ERROR.
    logging.getLogger("carewatch.hub.escalation").setLevel(logging.CRITICAL)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
