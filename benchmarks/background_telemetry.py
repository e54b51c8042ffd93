"""Background telemetry for benchmarks: virtual gateways of 20 beds each, real wire format.

Traffic mix (`--mix`):
- `presence` (default): one presence reading per bed at a time, as fall_to_console expects.
- `bed-radar`: what an MR60BHA1 bed radar reports: heart rate, respiration rate, occupancy and
  presence in turn. One round in 25 per bed is spent out of bed (occupancy and presence false:
  at night that starts a bed-exit timer, and the next round's occupancy cancels it), and some
  heart and breathing rates are out of range (a vital-signs timer, cancelled by the next
  in-range rate), so the waiting rules do their work.

Pace:
- `--interval S` (default): every bed sends one reading per S seconds; each gateway batches its
  beds' readings once a second, with sequence numbers, as the edge agent's outbox does. The
  gateways are spread over the second; with `--together` they all publish at the start of each
  second, as the fleet simulator's do (the once-a-second flood an alarm must not wait behind).
- `--flat-out`: batches of `--batch-items` readings, round robin over the gateways, as fast as
  allowed. With `--credit-stdin`, at most `--window` readings ahead of the count the parent
  writes to stdin, one line at a time (the hub's accepted readings): as fast as the hub takes.

`--raw-topic T` publishes every batch to T instead of the gateways' data topics (for a raw
broker counter). `--clock-offset` is added to time.time() for sensed times, so that readings
agree with a hub running on a night clock. With `--seconds`, stops after that long and prints a
JSON summary on stdout; otherwise runs until terminated and prints nothing.

The outbox numbering and the in-flight-limited QoS 1 publishing are the fleet simulator's
(simulators/fleet.py, `carewatch sim fleet`), which is the realistic fleet; this script keeps only
what benchmarks need on top: deterministic mixes, flat-out pacing, credit and raw topics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiomqtt

from contract.wire import data_topic
from simulators.fleet import BEDS_PER_GATEWAY, MAX_IN_FLIGHT, InFlight, Outbox

Item = dict[str, object]
Mix = Callable[[int, int, float], Item]

BED_RADAR_CYCLE: Final = ("heart_rate", "respiration_rate", "occupancy", "heart_rate", "presence")
OUT_OF_BED_EVERY: Final = 25  # rounds: one round in 25 per bed is spent out of bed
HIGH_HEART_EVERY: Final = 20  # rounds: the first heart rate of one round in 20 is 142 bpm
HIGH_BREATHING_EVERY: Final = 30  # rounds: the breathing rate of one round in 30 is 34/min


def presence_item(bed: int, n: int, at: float) -> Item:
    """The `n`-th reading of `bed`: presence, absent one time in seven."""
    return {"dev": f"bg-radar-{bed}", "at": at, "reading": "presence", "value": n % 7 != 0}


def bed_radar_item(bed: int, n: int, at: float) -> Item:
    """The `n`-th reading of `bed`'s MR60BHA1: rates, occupancy and presence in turn."""
    step, round_ = n % len(BED_RADAR_CYCLE), n // len(BED_RADAR_CYCLE)
    reading = BED_RADAR_CYCLE[step]
    item: Item = {"dev": f"bg-radar-{bed}", "at": at}
    if (bed + round_) % OUT_OF_BED_EVERY == 0:
        # Out of bed: nobody there, no rates (the radar sends none), only "no motion".
        if reading in ("occupancy", "presence"):
            return {**item, "reading": reading, "value": False}
        return {**item, "reading": "motion", "value": False}
    if reading in ("occupancy", "presence"):
        return {**item, "reading": reading, "value": True}
    if reading == "heart_rate":
        high = step == 0 and (3 * bed + round_) % HIGH_HEART_EVERY == 1
        return {**item, "reading": reading, "value": 142 if high else 56 + (bed * 13 + n) % 30}
    high = (bed + 2 * round_) % HIGH_BREATHING_EVERY == 2
    return {**item, "reading": reading, "value": 34 if high else 12 + (bed * 7 + n) % 8}


MIXES: Final[dict[str, Mix]] = {"presence": presence_item, "bed-radar": bed_radar_item}


@dataclass
class Gateway:
    """One virtual gateway: its beds, its outbox epoch and sequence, whose reading is next."""

    name: str
    beds: range
    mix: Mix
    outbox: Outbox = field(default_factory=Outbox)
    cursor: int = 0

    def next_batch(self, count: int, now: float) -> bytes:
        at = round(now, 3)
        items = []
        for _ in range(count):
            bed = self.beds[self.cursor % len(self.beds)]
            items.append(self.mix(bed, self.cursor // len(self.beds), at))
            self.cursor += 1
        return self.outbox.batch(items, 1, now)


@dataclass
class Tally:
    readings: int = 0
    messages: int = 0


class Credit:
    """How many readings may be published: the parent's count plus a window, read from stdin."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._allowed = window
        self._moved = asyncio.Event()

    async def feed(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            self._allowed = int(line) + self._window
            self._moved.set()

    async def take(self, published: int, count: int) -> None:
        while published + count > self._allowed:
            self._moved.clear()
            await self._moved.wait()


def gateways(beds: int, mix: Mix) -> list[Gateway]:
    return [
        Gateway(f"bg-{g:04d}", range(start, min(start + BEDS_PER_GATEWAY, beds)), mix)
        for g, start in enumerate(range(0, beds, BEDS_PER_GATEWAY))
    ]


class Publisher:
    def __init__(self, client: aiomqtt.Client, args: argparse.Namespace) -> None:
        self._site: str = args.site
        self._raw_topic: str | None = args.raw_topic
        self._offset: float = args.clock_offset
        self._out = InFlight(client)
        self.tally = Tally()

    def now(self) -> float:
        return time.time() + self._offset

    async def publish(self, gateway: Gateway, count: int) -> None:
        """Queue the gateway's next batch; waits only while too many are unacknowledged."""
        payload = gateway.next_batch(count, self.now())
        topic = self._raw_topic or data_topic(self._site, gateway.name)
        await self._out.publish(topic, payload)
        self.tally.readings += count
        self.tally.messages += 1

    async def drain(self, within: float) -> None:
        """Wait for the broker to acknowledge what is still unacknowledged."""
        await self._out.drain(within)


async def paced(publisher: Publisher, gateway: Gateway, interval: float, together: bool) -> None:
    per_tick = max(1, round(len(gateway.beds) / interval))
    if not together:
        await asyncio.sleep(int(gateway.name[3:]) % 100 / 100)  # spread over the second
    while True:
        await publisher.publish(gateway, per_tick)
        await asyncio.sleep(1.0)


async def flat_out(
    publisher: Publisher, fleet: list[Gateway], batch_items: int, credit: Credit | None
) -> None:
    index = 0
    while True:
        if credit is not None:
            await credit.take(publisher.tally.readings, batch_items)
        await publisher.publish(fleet[index % len(fleet)], batch_items)
        index += 1
        if index % 50 == 0:
            await asyncio.sleep(0)  # let acknowledgements and credit lines in


async def run(args: argparse.Namespace) -> None:
    fleet = gateways(args.beds, MIXES[args.mix])
    async with aiomqtt.Client(
        args.host,
        args.port,
        identifier=f"bench-background-{secrets.token_hex(3)}",
        max_inflight_messages=1000,
    ) as client:
        client.pending_calls_threshold = MAX_IN_FLIGHT + 10  # in flight on purpose: no warnings
        publisher = Publisher(client, args)
        tasks: list[asyncio.Task[None]] = []
        if args.flat_out:
            credit = Credit(args.window) if args.credit_stdin else None
            if credit is not None:
                tasks.append(asyncio.create_task(credit.feed()))
            tasks.append(asyncio.create_task(flat_out(publisher, fleet, args.batch_items, credit)))
        else:
            tasks += [
                asyncio.create_task(paced(publisher, g, args.interval, args.together))
                for g in fleet
            ]
        started, cpu = time.monotonic(), time.process_time()
        if args.seconds is None:
            await asyncio.gather(*tasks)
            return
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - started
        for task in tasks:
            task.cancel()
        await publisher.drain(5.0)
    cpu = time.process_time() - cpu
    summary = {**publisher.tally.__dict__, "seconds": round(elapsed, 3), "cpu_s": round(cpu, 3)}
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", type=int, required=True)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--mix", choices=sorted(MIXES), default="presence")
    parser.add_argument("--together", action="store_true", help="all gateways at once")
    parser.add_argument("--flat-out", action="store_true")
    parser.add_argument("--batch-items", type=int, default=BEDS_PER_GATEWAY)
    parser.add_argument("--credit-stdin", action="store_true")
    parser.add_argument("--window", type=int, default=20_000, help="readings ahead of credit")
    parser.add_argument("--raw-topic", default=None)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
