"""Ingest readings/s in one process on SQLite and on PostgreSQL, as a ratio of Mosquitto's raw rate.

benchmarks/watch_throughput.py's machinery, imported and unchanged (its raw phase and its hub
phase: `--beds` beds of bed-radar telemetry published flat out, at most `--window` readings
ahead of what the hub has accepted, readings/s from the hub's ingest counters over a
`--seconds` window after `--warmup`), run on one Mosquitto, one run:

1. raw: what this broker delivers to one plain subscriber on this machine right now;
2. the hub on SQLite (a fresh file);
3. the hub on PostgreSQL: a fresh database on a server this script starts from Debian's
   packages (tests/support/postgres.py), with fsync, synchronous_commit and full_page_writes on,
   as a hub's server has them (the test helper turns them off for speed);
4. raw again, to show how much the machine moved meanwhile.

Each hub starts once on its fresh database before its phase, so that the registry is there
and the store's size before the readings can be read; the phase then starts it again.

Bytes per stored reading: the `samples` table and the `series` table, their indexes included
(SQLite: the pages they use, from the `dbstat` table; PostgreSQL: pg_total_relation_size of every
partition of `samples`, and of `series`), and the whole store's growth over the phase (SQLite:
the file and its WAL; PostgreSQL: pg_database_size; rollups, live state, timers and alerts
included), each over the readings stored.

    python benchmarks/store_ingest.py --beds 10000 --seconds 30
    python benchmarks/store_ingest.py --database sqlite        # one of them
    python benchmarks/store_ingest.py --beds 200 --seconds 2 --warmup 1    # smoke run

Prints figures; asserts nothing (docs/architecture.md, Targets: ≥ 20,000 readings/s in one
process, reported as a ratio of the broker's raw throughput in the same run; SQLite should not
fall below the ~30,000 readings/s it reached on the 2-core machine before PostgreSQL came).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.store_disk import HONEST_POSTGRES, postgres_table_bytes, sqlite_table_bytes
from benchmarks.watch_common import hub_config, night_clock, site_spec, store_size
from benchmarks.watch_throughput import (
    HubResult,
    RawResult,
    hub_phase,
    print_breakdown,
    raw_phase,
)
from hub.app import Hub
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.postgres import postgres

BACKENDS: Final = ("sqlite", "postgresql")
SAMPLE_TABLES: Final = ("samples", "series")


@dataclass(frozen=True, slots=True)
class Sizes:
    store: int  # SQLite: file and WAL; PostgreSQL: pg_database_size
    samples: int  # samples and series, indexes included


@dataclass(frozen=True, slots=True)
class BackendResult:
    backend: str
    hub: HubResult
    before: Sizes
    after: Sizes


def sizes(target: Path | str) -> Sizes:
    if isinstance(target, Path):
        tables = sqlite_table_bytes(target)
        return Sizes(store_size(target), sum(tables.get(t, 0) for t in SAMPLE_TABLES))
    tables = postgres_table_bytes(target)
    return Sizes(tables["(database)"], sum(tables[t] for t in SAMPLE_TABLES))


async def seed(broker: MosquittoBroker, target: Path | str, args: argparse.Namespace) -> None:
    """Start the hub once on its fresh database and stop it: the registry, the tables."""
    config = hub_config(broker.host, broker.port, Path(), site_spec(args.beds))
    hub = await Hub.start(config.model_copy(update={"database": target}), night_clock())
    await hub.stop()


async def measure(
    broker: MosquittoBroker, backend: str, target: Path | str, args: argparse.Namespace
) -> BackendResult:
    await seed(broker, target, args)
    before = await asyncio.to_thread(sizes, target)
    # hub_phase is typed for a SQLite path; it hands str(database) to the hub's configuration,
    # which a postgresql:// URL passes through unchanged.
    result = await hub_phase(broker, cast(Path, target), args)
    after = await asyncio.to_thread(sizes, target)
    return BackendResult(backend, result, before, after)


async def hub_on(
    broker: MosquittoBroker, backend: str, workdir: Path, args: argparse.Namespace
) -> BackendResult:
    if backend == "sqlite":
        return await measure(broker, backend, workdir / "hub.db", args)
    with postgres(settings=HONEST_POSTGRES) as server:
        return await measure(broker, backend, server.create_database("carewatch_ingest"), args)


def report(args: argparse.Namespace, raw: list[RawResult], results: list[BackendResult]) -> None:
    raw_mean = sum(r.readings_per_s for r in raw) / len(raw)
    print(
        f"store ingest: {args.beds:,} beds, bed-radar mix, {args.batch_items} readings per batch, "
        f"window {args.seconds:.0f} s after {args.warmup:.0f} s warm-up, night clock"
    )
    for label, r in zip(("before", "after"), raw, strict=False):
        print(
            f"  raw broker, {label:6}  {r.readings_per_s:>10,.0f} readings/s "
            f"({r.messages_per_s:,.0f} messages/s; CPU: subscriber {r.counter_cpu:.2f}, "
            f"publisher {r.publisher_cpu:.2f} cores)"
        )
    for found in results:
        hub = found.hub
        rate = hub.accepted / hub.seconds
        stored = max(hub.stored_readings, 1)
        cores = "   ".join(f"{name} {cpu / hub.seconds:.2f}" for name, cpu in hub.cpu.items())
        print(f"\n  hub on {found.backend}")
        print(f"    ingested+evaluated {rate:>10,.0f} readings/s = {rate / raw_mean:.3f} of raw")
        print(f"    CPU (cores)  {cores}")
        print(f"    per reading  {hub.cpu['hub'] / max(hub.accepted, 1) * 1e6:.0f} µs of hub CPU")
        print(f"    hub start with {args.beds:,} beds (the second): {hub.start_s:.1f} s")
        samples = found.after.samples - found.before.samples
        grown = found.after.store - found.before.store
        print(
            f"    stored {hub.stored_readings:,} readings: samples + series {samples / 1e6:,.1f} MB"
            f" = {samples / stored:.0f} bytes/reading; whole store grew {grown / 1e6:,.1f} MB "
            f"= {grown / stored:.0f} bytes/reading"
        )
        print_breakdown(hub)
    print(
        "\n  targets: ≥ 20,000 readings/s in one process (docs/architecture.md); on SQLite, "
        "not below the ~30,000 readings/s measured before PostgreSQL came"
    )


async def run(args: argparse.Namespace) -> None:
    backends = BACKENDS if args.database == "both" else (args.database,)
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-store-ingest-"))
    try:
        with mosquitto() as broker:
            raw = [raw_phase(broker, args)]
            results = [await hub_on(broker, backend, workdir, args) for backend in backends]
            raw.append(raw_phase(broker, args))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, raw, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--beds", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="s before the window")
    parser.add_argument("--batch-items", type=int, default=20, help="readings per batch")
    parser.add_argument("--window", type=int, default=20_000, help="readings ahead of the hub")
    # watch_throughput's profilers, off: its hub phase reads them
    parser.set_defaults(py_spy=None, cprofile=None)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
