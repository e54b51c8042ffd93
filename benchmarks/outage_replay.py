"""Replay after a one-hour outage: how fast a gateway's backlog reaches the hub, and exactly once.

An outbox is filled with one hour of what the 20-device fleet of benchmarks/edge_fleet.py
senses (radar presence/motion every 2-6 s, call-button presses, BTHome sensor adverts every
10 s), with sensed-at times spread over the past hour and marked historical, as the agent writes
them while the broker is unreachable. Then a real Mosquitto and the hub (SQLite store, rules,
alerts) are running, and `carewatch edge` starts on that outbox: the time until the hub has
stored every item gives the replay rate. Duplicates are checked in the hub's store.

    python benchmarks/outage_replay.py
    python benchmarks/outage_replay.py --hours 4

Target (docs/architecture.md): one hour buffered and replayed, nothing lost, nothing duplicated.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.edge_fleet import (
    RADARS,
    hour_of_observations,
    hub_site,
    start_edge,
    write_edge_config,
)
from contract.wire import Observation
from edge.outbox import Outbox
from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.support.mosquitto import mosquitto


async def fill_outbox(path: Path, observations: Sequence[Observation]) -> tuple[int, float]:
    """Append as the agent would (one transaction per second's burst); (bytes used, seconds)."""
    started = time.perf_counter()
    outbox = await Outbox.open(path)
    try:
        for _, burst in groupby(observations, key=lambda obs: int(obs.at)):
            await outbox.append(list(burst), historical=True)
        used = await outbox.used_bytes()
    finally:
        await outbox.close()
    return used, time.perf_counter() - started


async def stored(hub: Hub) -> int:
    return await hub.ingest.records.count_rows("readings") + await hub.ingest.records.count_rows(
        "events"
    )


async def distinct_rows(hub: Hub) -> int:
    total = 0
    for table in ("readings", "events"):
        async with hub.store.db.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT device, name, sensed_at FROM {table})"
        ) as cursor:
            row = await cursor.fetchone()
        total += int(row[0]) if row else 0
    return total


async def historical_rows(hub: Hub) -> int:
    total = 0
    for table in ("readings", "events"):
        async with hub.store.db.execute(
            f"SELECT count(*) FROM {table} WHERE historical = 1"
        ) as cursor:
            row = await cursor.fetchone()
        total += int(row[0]) if row else 0
    return total


async def wait_for_all(hub: Hub, total: int, within: float) -> tuple[float | None, float]:
    """(time the first item was stored, time the last was), perf_counter seconds."""
    first: float | None = None
    deadline = time.perf_counter() + within
    while (count := await stored(hub)) < total:
        if first is None and count:
            first = time.perf_counter()
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {count} of {total} items arrived in {within:.0f} s")
        await asyncio.sleep(0.01)
    return first, time.perf_counter()


def hub_config(host: str, port: int, workdir: Path) -> HubConfig:
    return HubConfig.model_validate(
        {
            "broker": {"host": host, "port": port, "client_id": "bench-hub"},
            "database": str(workdir / "hub.db"),
            "web": {"port": 0, "secret_key": "b" * 40},
            "users": [
                {
                    "username": "nurse",
                    "password_hash": hash_password("bench-password"),
                    "role": "staff",
                    "sites": ["*"],
                }
            ],
            "sites": [hub_site()],
        }
    )


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-replay-bench-"))
    outbox = workdir / "outbox.db"
    observations = hour_of_observations(time.time() - 3600 * args.hours, 3600 * args.hours)
    used, fill_s = await fill_outbox(outbox, observations)
    total = len(observations)
    radars = [MR60FDA1Simulator() for _ in range(RADARS)]
    config = workdir / "edge.yaml"
    with mosquitto() as broker:
        hub = await Hub.start(hub_config(broker.host, broker.port, workdir))
        await asyncio.wait_for(hub.mqtt.connected.wait(), 10)
        ports = [r.port for r in radars]
        write_edge_config(config, broker.host, broker.port, outbox, workdir / "air.sock", ports)
        started = time.perf_counter()
        edge = start_edge(config, workdir / "edge.log")
        try:
            first, last = await wait_for_all(hub, total, args.timeout)
            counts = (await stored(hub), await distinct_rows(hub), await historical_rows(hub))
            ingest = hub.ingest.counters()
        finally:
            edge.terminate()
            edge.wait(15)
            await hub.stop()
            for radar in radars:
                radar.close()
    report(args, total, used, fill_s, started, first, last, counts, ingest)


def report(
    args: argparse.Namespace,
    total: int,
    used: int,
    fill_s: float,
    started: float,
    first: float | None,
    last: float,
    counts: tuple[int, int, int],
    ingest: dict[str, int],
) -> None:
    rows, distinct, historical = counts
    print(f"outage replay: {args.hours:g} h of a 20-device gateway = {total} items")
    print(
        f"  outbox: {used / 1e6:.2f} MB in use ({used / total:.0f} B/item; the 50 MB default "
        f"holds ~{50e6 / (used / total) / 1e3:.0f}k items), filled in {fill_s:.1f} s"
    )
    from_first = last - first if first is not None else float("nan")
    print(
        f"  all stored {last - started:.2f} s after the agent started "
        f"({total / (last - started):.0f} items/s, incl. agent start-up); "
        f"{from_first:.2f} s from first to last ({total / from_first:.0f} items/s)"
    )
    print(
        f"  hub rows {rows}, distinct (device, name, sensed_at) {distinct}, "
        f"historical {historical}; duplicates de-duplicated by ingest {ingest['duplicates']}, "
        f"gaps {ingest['gaps']}; {'OK' if rows == distinct == total else 'MISMATCH'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="outage length to replay")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
