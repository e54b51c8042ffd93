"""A hostile neighbour for ten minutes: does any fall go unalerted, does the hub's memory grow?

A real Mosquitto runs the shipped configuration (deploy/mosquitto/carewatch.conf, without TLS),
with passwords and the pattern ACL; the hub runs as its own process (`carewatch hub`), so its
memory is its own. Beside it, in this process:

- the fleet simulator (`--beds`, at its realistic rate) as one broker user, with a fall
  injected on a new bed every `--fall-every` seconds;
- a hostile gateway with valid credentials of its own, registered with the hub, publishing at
  `--hostile-rate` messages a second: deep nesting, 5,000-digit and 64-bit-overflowing numbers,
  Infinity and NaN, unknown devices, payloads larger than the broker allows, writes under
  another gateway's topic, and connections that try to take the hub's and the fleet's client
  ids;
- a monitor that watches the hub's retained status.

It prints every fall injected and alerted, the hub's rejection counters against the poison the
broker passed on, the hub's RSS over time, and the hub's ingest against what the fleet sent.

    .venv/bin/python -m benchmarks.hostile_soak                 # 10 minutes, 10,000 beds
    .venv/bin/python -m benchmarks.hostile_soak --minutes 1 --beds 500

tests/system/test_hostile_soak.py runs the same soak for half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import httpx
import psutil
import yaml

from contract.wire import HUB_STATUS_TOPIC, data_topic
from simulators.fleet import Fleet, FleetOptions, FleetPlan, plan_fleet, site_spec
from tests.support.mosquitto import MosquittoBroker, free_port, mosquitto
from tests.system.test_broker_security import make_password_file

SITE: Final = "soak"
HOSTILE: Final = "gw-hostile"
HOSTILE_DEVICE: Final = "hostile-radar"
HUB_USER: Final = "carewatch-hub"
FLEET_USER: Final = "fleet"
MONITOR_USER: Final = "monitor"
DEPLOY: Final = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
TLS_DIRECTIVES: Final = frozenset({"cafile", "certfile", "keyfile", "tls_version"})
ADMIN_TOKEN: Final = "soak-admin-" + secrets.token_hex(16)
OVERSIZED: Final = 300 * 1024  # over the broker's max_packet_size (266,240)


@dataclass
class SoakResult:
    seconds: float
    beds: int
    falls_injected: list[str] = field(default_factory=list)  # rooms
    falls_alerted: list[str] = field(default_factory=list)
    poison_delivered: Counter[str] = field(default_factory=Counter)  # reached the hub
    refused_by_broker: Counter[str] = field(default_factory=Counter)  # never reached it
    takeovers_tried: int = 0
    hub_offline_seen: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    fleet_items: int = 0
    hub_accepted: int = 0
    rss_mib: list[tuple[float, float]] = field(default_factory=list)

    @property
    def falls_missed(self) -> list[str]:
        return sorted(set(self.falls_injected) - set(self.falls_alerted))

    @property
    def rejections_counted(self) -> int:
        return sum(self.rejected.values())


# --- the broker ---------------------------------------------------------------------------------


def broker_config(port: int, password_file: Path, acl_file: Path, data: Path) -> str:
    """The shipped carewatch.conf on a loopback port, without TLS; every other line as shipped."""
    lines: list[str] = []
    for line in (DEPLOY / "carewatch.conf").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#") or words[0] in TLS_DIRECTIVES:
            continue
        if words[0] == "listener":
            line = f"listener {port} 127.0.0.1"
        elif words[0] == "password_file":
            line = f"password_file {password_file}"
        elif words[0] == "acl_file":
            line = f"acl_file {acl_file}"
        lines.append(line)
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        lines.append("user root")  # else it drops to "mosquitto", who cannot read the folder
    lines += [f"persistence_location {data}/", "log_dest stderr", "log_type error"]
    return "\n".join(lines) + "\n"


def acl(site: str) -> str:
    """The shipped pattern ACL (each gateway writes only its own topics), plus the fleet's one
    user for all its gateways and a read-only monitor."""
    shipped = (DEPLOY / "acl-pattern.example").read_text()
    return (
        f"{shipped}\n"
        f"user {FLEET_USER}\ntopic write carewatch/v1/{site}/#\ntopic read {HUB_STATUS_TOPIC}\n\n"
        f"user {MONITOR_USER}\ntopic read carewatch/v1/#\n"
    )


@contextlib.contextmanager
def soak_broker(workdir: Path, passwords: dict[str, str]) -> Iterator[MosquittoBroker]:
    password_file = workdir / "carewatch.passwd"
    make_password_file(password_file, list(passwords.items()))
    acl_file = workdir / "carewatch.acl"
    acl_file.write_text(acl(SITE))
    data = workdir / "broker-data"
    with mosquitto(config=lambda port: broker_config(port, password_file, acl_file, data)) as b:
        yield b


# --- the hub, in its own process ------------------------------------------------------------------


def hub_site(plan: FleetPlan) -> dict[str, Any]:
    site = site_spec(plan)
    first_room = site["zones"][0]["rooms"][0]["id"]
    site["gateways"].append(HOSTILE)
    site["devices"].append(
        {"id": HOSTILE_DEVICE, "gateway": HOSTILE, "profile": "seeed-mr60fda1", "room": first_room}
    )
    return site


def hub_yaml(
    broker: MosquittoBroker, password: str, workdir: Path, plan: FleetPlan, port: int
) -> Path:
    config = {
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": HUB_USER,
            "password": password,
            "client_id": HUB_USER,
        },
        "database": str(workdir / "hub.db"),
        "web": {
            "host": "127.0.0.1",
            "port": port,
            "secret_key": secrets.token_hex(32),
            "limits": {"requests_per_minute": 100_000},
        },
        "tokens": [
            {
                "name": "soak",
                "sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
                "role": "admin",
            }
        ],
        "sites": [hub_site(plan)],
    }
    path = workdir / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def hub_process(
    config: Path, port: int, workdir: Path
) -> AsyncIterator[tuple[psutil.Process, str]]:
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "hub.log").open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - a process that outlives this call
        [sys.executable, "-m", "carewatch.cli", "hub", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await _until_connected(url, process, workdir / "hub.log")
        yield psutil.Process(process.pid), url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _until_connected(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the hub stopped; its log: {log}")
            with contextlib.suppress(httpx.HTTPError):
                health = (await client.get("/api/health")).json()
                if health.get("broker_connected"):
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the hub did not connect within 120 s; its log: {log}")


async def hub_health(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        answer = await client.get("/api/health")
        answer.raise_for_status()
        health: dict[str, Any] = answer.json()
        return health


async def fall_rooms_alerted(url: str) -> list[str]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        answer = await client.get("/api/alerts", params={"state": "all", "limit": 1000})
        answer.raise_for_status()
        return [a["room"] for a in answer.json()["alerts"] if a["rule"] == "fall" and a["room"]]


# --- the hostile gateway ------------------------------------------------------------------------


def _batch(items: list[Any], seq: int | str = 1, bdseq: int | str = 1) -> bytes:
    return (
        f'{{"epoch":"deadbeef","seq":{seq},"bdseq":{bdseq},"sent":{time.time()},'
        f'"items":{json.dumps(items)}}}'
    ).encode()


def poison_kinds() -> dict[str, Callable[[], tuple[str, bytes]]]:
    """Each kind: (channel, payload). Every one must be refused and counted exactly once."""
    now = time.time()
    ok = {"dev": HOSTILE_DEVICE, "at": now, "event": "fall", "value": True}
    return {
        "deep_nesting": lambda: ("data", b"[" * 100_000 + b"]" * 100_000),
        "digits_5000": lambda: ("data", _batch([ok], seq="9" * 5000)),
        "seq_overflow": lambda: ("data", _batch([ok], seq=str(2**64))),
        "bdseq_overflow": lambda: ("status", f'{{"state":"online","bdseq":{2**64}}}'.encode()),
        "at_infinity": lambda: (
            "data",
            _batch([ok]).replace(f'"at": {now}'.encode(), b'"at": Infinity'),
        ),
        "value_nan": lambda: (
            "data",
            _batch(
                [{"dev": HOSTILE_DEVICE, "at": time.time(), "reading": "heart_rate", "value": 1}]
            ).replace(b'"value": 1', b'"value": NaN'),
        ),
        "unknown_device": lambda: ("data", _batch([{**ok, "dev": "not-registered"}])),
        "not_json": lambda: ("devices", b"\xff\xfe not json"),
    }


class HostileGateway:
    def __init__(self, broker: MosquittoBroker, password: str, result: SoakResult) -> None:
        self._broker = broker
        self._password = password
        self._result = result
        self._username = f"{SITE}/{HOSTILE}"

    def _client(self, identifier: str | None = None) -> aiomqtt.Client:
        return aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=self._username,
            password=self._password,
            identifier=identifier or f"hostile-{secrets.token_hex(3)}",
            timeout=10,
        )

    async def run(self, stop: asyncio.Event, rate: float) -> None:
        """Rounds of poison on one connection, then the acts that end a connection, each on a
        connection of its own (a pinned broker gives them all this gateway's one client id)."""
        while not stop.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                async with self._client() as client:
                    await self._poison_round(client, stop, rate)
            for act in (self._take_over(HUB_USER), self._take_over(FLEET_USER), self._oversized()):
                if stop.is_set():
                    act.close()
                    continue
                await act
                await _pause(stop, 1 / rate)

    async def _poison_round(self, client: aiomqtt.Client, stop: asyncio.Event, rate: float) -> None:
        for name, make in poison_kinds().items():
            channel, payload = make()
            await client.publish(f"carewatch/v1/{SITE}/{HOSTILE}/{channel}", payload, qos=1)
            self._result.poison_delivered[name] += 1
            await _pause(stop, 1 / rate)
        await client.publish(data_topic(SITE, "gw-0000"), _batch([]), qos=1)  # the ACL drops it
        self._result.refused_by_broker["foreign_topic"] += 1

    async def _take_over(self, identifier: str) -> None:
        self._result.takeovers_tried += 1
        with contextlib.suppress(aiomqtt.MqttError):
            async with self._client(identifier):
                await asyncio.sleep(0.5)

    async def _oversized(self) -> None:
        """More than the broker's max_packet_size: the broker hangs up on it."""
        self._result.refused_by_broker["oversized"] += 1
        with contextlib.suppress(aiomqtt.MqttError):
            async with self._client() as client:
                topic = f"carewatch/v1/{SITE}/{HOSTILE}/data"
                await client.publish(topic, b" " * OVERSIZED, qos=0)
                await asyncio.sleep(0.2)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# --- the run ----------------------------------------------------------------------------------


async def watch_hub_status(broker: MosquittoBroker, password: str, result: SoakResult) -> None:
    async with aiomqtt.Client(
        broker.host, broker.port, username=MONITOR_USER, password=password
    ) as client:
        await client.subscribe(HUB_STATUS_TOPIC, qos=1)
        async for message in client.messages:
            body = json.loads(bytes(message.payload))
            if body.get("state") == "offline":
                result.hub_offline_seen += 1


async def sample_memory(process: psutil.Process, stop: asyncio.Event, result: SoakResult) -> None:
    started = time.monotonic()
    while not stop.is_set():
        result.rss_mib.append((time.monotonic() - started, process.memory_info().rss / 2**20))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)


async def inject_falls(fleet: Fleet, every: float, stop: asyncio.Event, result: SoakResult) -> None:
    bed = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set() or bed >= len(fleet.plan.beds):
            return
        bed += 1
        fleet.inject("fall", bed)
        result.falls_injected.append(f"r-{bed:05d}")


async def run_soak(
    seconds: float,
    beds: int,
    fall_every: float = 3.0,
    hostile_rate: float = 5.0,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> SoakResult:
    result = SoakResult(seconds, beds)
    passwords = {
        user: secrets.token_hex(12)
        for user in (HUB_USER, FLEET_USER, MONITOR_USER, f"{SITE}/{HOSTILE}")
    }
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        broker = stack.enter_context(soak_broker(folder, passwords))
        plan = plan_fleet(beds, site=SITE)
        port = free_port()
        config = hub_yaml(broker, passwords[HUB_USER], folder, plan, port)
        progress(f"broker on {broker.port}; starting the hub with {beds} beds")
        async with hub_process(config, port, folder) as (process, url):
            options = FleetOptions(
                broker.host,
                broker.port,
                events_per_hour=0,
                seed=1,
                username=FLEET_USER,
                password=passwords[FLEET_USER],
            )
            fleet = Fleet(plan, options)
            stop = asyncio.Event()
            hostile = HostileGateway(broker, passwords[f"{SITE}/{HOSTILE}"], result)
            tasks = [
                asyncio.create_task(fleet.run(stop)),
                asyncio.create_task(hostile.run(stop, hostile_rate)),
                asyncio.create_task(inject_falls(fleet, fall_every, stop, result)),
                asyncio.create_task(sample_memory(process, stop, result)),
            ]
            monitor = asyncio.create_task(watch_hub_status(broker, passwords[MONITOR_USER], result))
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(10.0, seconds - elapsed))
                rss = result.rss_mib[-1][1] if result.rss_mib else 0.0
                progress(
                    f"{elapsed:6.0f} s  falls {len(result.falls_injected)}  "
                    f"poison {sum(result.poison_delivered.values())}  "
                    f"takeovers {result.takeovers_tried}  hub RSS {rss:.0f} MiB"
                )
            stop.set()
            await asyncio.gather(*tasks)
            await _settle(url, result, fleet)
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
            result.fleet_items = fleet.stats.items
    return result


async def _settle(url: str, result: SoakResult, fleet: Fleet) -> None:
    """Wait (up to 30 s) until the hub has taken in what was sent; then read its figures."""
    deadline = time.monotonic() + 30
    while True:
        health = await hub_health(url)
        counters = health["ingest"]
        result.rejected = {k: v for k, v in counters.items() if k.startswith("rejected_")}
        result.hub_accepted = counters["accepted"]
        result.falls_alerted = await fall_rooms_alerted(url)
        caught_up = result.hub_accepted >= fleet.stats.items and not result.falls_missed
        counted = result.rejections_counted >= sum(result.poison_delivered.values())
        if (caught_up and counted) or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


def report(result: SoakResult) -> str:
    rss = [mib for _, mib in result.rss_mib]
    warm = [mib for at, mib in result.rss_mib if at >= min(60.0, result.seconds / 4)] or rss
    lines = [
        f"hostile soak: {result.seconds:.0f} s, {result.beds} beds",
        f"  falls injected {len(result.falls_injected)}, alerted "
        f"{len(set(result.falls_injected) & set(result.falls_alerted))}, missed "
        f"{len(result.falls_missed)} {result.falls_missed[:10]}",
        f"  poison passed on by the broker: {sum(result.poison_delivered.values())} "
        f"({dict(sorted(result.poison_delivered.items()))})",
        f"  rejections counted by the hub: {result.rejections_counted} ({result.rejected})",
        f"  stopped by the broker: {dict(result.refused_by_broker)}; "
        f"takeover attempts {result.takeovers_tried}; hub seen offline {result.hub_offline_seen}",
        f"  fleet items sent {result.fleet_items}, hub accepted {result.hub_accepted}",
    ]
    if rss:
        lines.append(
            f"  hub RSS MiB: first {rss[0]:.0f}, after warm-up {warm[0]:.0f}, "
            f"last {rss[-1]:.0f}, max {max(rss):.0f} ({len(rss)} samples, every 5 s)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--beds", type=int, default=10_000)
    parser.add_argument("--fall-every", type=float, default=3.0, metavar="S")
    parser.add_argument("--hostile-rate", type=float, default=5.0, metavar="PER_S")
    args = parser.parse_args()
    result = asyncio.run(
        run_soak(
            args.minutes * 60,
            args.beds,
            args.fall_every,
            args.hostile_rate,
            progress=lambda line: print(line, flush=True),
        )
    )
    print(report(result), flush=True)
    return 0 if not result.falls_missed else 1


if __name__ == "__main__":
    sys.exit(main())
