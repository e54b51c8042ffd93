"""Background telemetry for benchmarks: virtual gateways of 20 beds each, real wire format.

Every bed sends one presence or motion reading per `--interval` seconds; each gateway batches its
beds' readings once a second, with sequence numbers, as the edge agent's outbox does. Runs until
terminated. Prints nothing unless the broker cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import aiomqtt

from edge.wire import data_topic, encode_batch

BEDS_PER_GATEWAY = 20


async def gateway(
    client: aiomqtt.Client, site: str, index: int, beds: range, interval: float
) -> None:
    name = f"bg-{index:04d}"
    epoch = secrets.token_hex(4)
    seq = 1
    per_tick = max(1, round(len(beds) / interval))
    cursor = 0
    await asyncio.sleep((index % 100) / 100)  # spread the gateways over the second
    while True:
        now = time.time()
        items: list[dict[str, object]] = []
        for _ in range(per_tick):
            bed = beds[cursor % len(beds)]
            cursor += 1
            items.append(
                {
                    "dev": f"bg-radar-{bed}",
                    "at": round(now, 3),
                    "reading": "presence",
                    "value": cursor % 7 != 0,
                }
            )
        await client.publish(data_topic(site, name), encode_batch(epoch, seq, 1, now, items), qos=1)
        seq += len(items)
        await asyncio.sleep(1.0)


async def run(args: argparse.Namespace) -> None:
    async with aiomqtt.Client(
        args.host, args.port, identifier="bench-background", max_inflight_messages=1000
    ) as client:
        tasks = []
        for g, start in enumerate(range(0, args.beds, BEDS_PER_GATEWAY)):
            beds = range(start, min(start + BEDS_PER_GATEWAY, args.beds))
            tasks.append(asyncio.create_task(gateway(client, args.site, g, beds, args.interval)))
        await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--beds", type=int, required=True)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
