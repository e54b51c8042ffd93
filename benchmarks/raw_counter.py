"""A plain MQTT subscriber that only counts: the broker's raw throughput for a benchmark.

Subscribes to one topic (QoS 1, like the hub), prints `ready` once subscribed, waits for the
first message, lets `--warmup` seconds pass, then counts messages and readings (items, found by
their `"dev":` key, without parsing JSON) for `--seconds` and prints a JSON summary: readings,
messages, seconds and the CPU seconds this process used in the window.

    python benchmarks/raw_counter.py --port 1883 --topic bench-raw --seconds 20
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ITEM_MARK = b'"dev":'


@dataclass
class Counts:
    readings: int = 0
    messages: int = 0


class Counter:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.counts = Counts()
        self.subscribed = threading.Event()
        self.first = threading.Event()

    def attach(self, client: mqtt.Client) -> None:
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, *_: object) -> None:
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _data: object, message: mqtt.MQTTMessage) -> None:
        self.counts.messages += 1
        self.counts.readings += message.payload.count(ITEM_MARK)
        self.first.set()


def measure(counter: Counter, warmup: float, seconds: float) -> dict[str, float]:
    counter.first.wait(60)
    time.sleep(warmup)
    start = Counts(counter.counts.readings, counter.counts.messages)
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    end = Counts(counter.counts.readings, counter.counts.messages)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "readings": end.readings - start.readings,
        "messages": end.messages - start.messages,
        "seconds": round(wall, 3),
        "cpu_s": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    counter = Counter(args.topic)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-counter")
    counter.attach(client)
    client.connect(args.host, args.port)
    client.loop_start()
    counter.subscribed.wait(10)
    print("ready", flush=True)
    result = measure(counter, args.warmup, args.seconds)
    client.loop_stop()
    client.disconnect()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
