"""The edge agent: configuration → readers and decoders → durable outbox → MQTT publisher.

```
serial ports ─ SerialReader ─ decoder ─┐
BLE backend ─ BLEDispatcher ─ decoder ─┴▶ queue ▶ writer ▶ Outbox (SQLite) ▶ Publisher ▶ MQTT
        └──── heard / link up, down ──▶ Supervisor ─ device report (retained) ─┘
```

Readers run in callbacks on the event loop and hand observations to an in-memory queue; one
writer task appends them to the outbox (one transaction per burst) and wakes the publisher.
Whether an item is historical is decided when it is sensed: if the publisher is not connected to
a listening hub at that moment, the item is backlog.

The readers tell the Supervisor when each device is heard from and whether its port or the
BLE scanner is up; every change of a device's online flag publishes the retained device report.
A BLE radio that cannot be used (no D-Bus, no BlueZ, no adapter) is reported once with what to
do and retried every `ble.retry_s`; the serial devices and the publisher carry on meanwhile.

Start it with `carewatch edge --config /etc/carewatch/edge.yaml` (or
`python -m edge.agent --config …`). SIGINT and SIGTERM stop it cleanly: readers close, queued
items are written to the outbox, and the gateway's offline status is published.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from contract.wire import Observation
from contract.yaml_documents import ConfigError
from device_profiles import ProfileError, load_profile
from edge.ble import (
    BleakBackend,
    BLEDecoder,
    BLEDispatcher,
    BLEUnavailable,
    ScannerBackend,
    SimulatedAirBackend,
)
from edge.config import DeviceConfig, EdgeConfig, load_config
from edge.decoders.registry import make_ble_decoder, make_serial_decoder
from edge.logs import ContextLogger, context_logger
from edge.outbox import Outbox
from edge.publisher import Backoff, Publisher
from edge.repeats import RepeatFilter
from edge.serial_reader import SerialDecoder, SerialReader
from edge.supervision import Supervisor

Clock = Callable[[], float]
_Pending = tuple[list[Observation], bool]  # observations, historical


def agent_name() -> str:
    try:
        return f"carewatch-edge/{metadata.version('carewatch')}"
    except metadata.PackageNotFoundError:
        return "carewatch-edge"


@dataclass(frozen=True, slots=True)
class _Devices:
    serial: list[tuple[DeviceConfig, int, SerialDecoder]]  # device, baudrate, decoder
    ble: dict[str, tuple[str, BLEDecoder]]  # address -> (device id, BLEDecoder)
    windows: dict[str, float]  # device id -> supervision window, seconds


class EdgeAgent:
    """One gateway's agent. `await agent.run(stop)` until `stop` is set."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        clock: Clock = time.time,
        backoff: Backoff | None = None,
        ble_backend: ScannerBackend | None = None,
        serial_retry_s: float = 3.0,
        counters_interval_s: float = 300.0,
        supervision_check_s: float = 5.0,
        devices_report_s: float = 300.0,
    ) -> None:
        self.config = config
        self._clock = clock
        self._backoff = backoff
        self._log = context_logger(__name__, site=config.site, gateway=config.gateway)
        self._ble_backend = ble_backend or _configured_backend(config, self._log)
        self._serial_retry_s = serial_retry_s
        self._counters_interval_s = counters_interval_s
        self._supervision_check_s = supervision_check_s
        self._devices_report_s = devices_report_s
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._readers: list[SerialReader] = []
        self._dispatcher: BLEDispatcher | None = None
        self._publisher: Publisher | None = None
        self._outbox: Outbox | None = None
        self._supervisor: Supervisor | None = None
        self._repeats: RepeatFilter | None = None
        self._ble_devices: list[str] = []
        self.ble_unavailable: Counter[str] = Counter()  # failed BLE starts by reason
        self._ble_problem: str | None = None  # the reason last logged, until scanning starts
        self.observations = 0
        self.ready = asyncio.Event()

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            raise RuntimeError("the agent is not running")
        return self._publisher

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the agent is not running")
        return self._outbox

    @property
    def readers(self) -> list[SerialReader]:
        return list(self._readers)

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            raise RuntimeError("the agent is not running")
        return self._supervisor

    def counters(self) -> dict[str, int]:
        """Rejections and throughput, flat: `<device>.<reason>`, `ble.<reason>`, totals."""
        counts: dict[str, int] = {"observations": self.observations}
        for reader in self._readers:
            counts.update(_prefixed(reader.device_id, reader.decoder.rejected.items()))
            counts.update(_prefixed(reader.device_id, reader.errors.items()))
        if self._dispatcher is not None:
            for key, value in self._dispatcher.rejected.items():
                counts[key if "." in key else f"ble.{key}"] = value
        if isinstance(self._ble_backend, SimulatedAirBackend):
            counts.update(_prefixed("ble_air", self._ble_backend.rejected.items()))
        counts.update(_prefixed("ble.unavailable", self.ble_unavailable.items()))
        if self._supervisor is not None:
            health = self._supervisor.health()
            counts["devices_offline"] = sum(not device.online for device in health)
        if self._publisher is not None:
            counts["items_sent"] = self._publisher.items_sent
            counts["batches_sent"] = self._publisher.batches_sent
            counts["device_reports_sent"] = self._publisher.reports_sent
        if self._repeats is not None:
            counts["readings_repeated_suppressed"] = self._repeats.suppressed
        return counts

    # --- running ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        devices = await asyncio.to_thread(self._build_devices)
        self._supervisor = Supervisor(
            devices.windows, clock=self._clock, on_change=self._report_devices, log=self._log
        )
        self._repeats = RepeatFilter(devices.windows, self._clock)
        outbox = self.config.outbox
        self._outbox = await Outbox.open(outbox.path, max_bytes=outbox.max_bytes, log=self._log)
        try:
            await self._run_with_outbox(devices, self._outbox, stop)
        finally:
            await self._outbox.close()
            self._log.info("edge agent stopped")

    async def _run_with_outbox(
        self, devices: _Devices, outbox: Outbox, stop: asyncio.Event
    ) -> None:
        publisher_stop = asyncio.Event()
        self._publisher = Publisher(
            self.config.broker,
            self.config.site,
            self.config.gateway,
            outbox,
            agent_name(),
            clock=self._clock,
            backoff=self._backoff,
            devices_report=self.supervisor.report,
            devices_report_s=self._devices_report_s,
        )
        self._log.info(
            "edge agent starting: %d serial, %d BLE devices; outbox %s (epoch %s, %d pending)",
            len(devices.serial),
            len(devices.ble),
            self.config.outbox.path,
            outbox.epoch,
            await outbox.pending(),
        )
        publisher = asyncio.create_task(self._publisher.run(publisher_stop))
        writer = asyncio.create_task(self._write(outbox, self._publisher))
        inputs = self._start_inputs(devices, stop)
        inputs.append(asyncio.create_task(self.supervisor.run(stop, self._supervision_check_s)))
        reporter = asyncio.create_task(self._report_counters(stop))
        self.ready.set()
        try:
            await stop.wait()
        finally:
            await self._shutdown(inputs, reporter, writer, publisher, publisher_stop)

    def _start_inputs(self, devices: _Devices, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        for device, baudrate, decoder in devices.serial:
            assert device.port is not None
            reader = SerialReader(
                device.id,
                device.port,
                baudrate,
                decoder,
                self._on_observations,
                clock=self._clock,
                retry_s=self._serial_retry_s,
                log=self._log,
                watch=self.supervisor,
            )
            self._readers.append(reader)
            tasks.append(asyncio.create_task(reader.run(stop)))
        if devices.ble and self._ble_backend is not None:
            self._ble_devices = [device_id for device_id, _ in devices.ble.values()]
            self._dispatcher = BLEDispatcher(
                devices.ble,
                self._on_observations,
                clock=self._clock,
                log=self._log,
                watch=self.supervisor,
            )
            tasks.append(asyncio.create_task(self._scan(self._ble_backend, self._dispatcher)))
        return tasks

    async def _shutdown(
        self,
        inputs: list[asyncio.Task[None]],
        reporter: asyncio.Task[None],
        writer: asyncio.Task[None],
        publisher: asyncio.Task[None],
        publisher_stop: asyncio.Event,
    ) -> None:
        self._log.info("edge agent stopping")
        self.supervisor.close()
        for task in (*inputs, reporter):
            task.cancel()
        await asyncio.gather(*inputs, reporter, return_exceptions=True)
        self._queue.put_nowait(None)  # the writer appends what is queued, then ends
        await asyncio.gather(writer, return_exceptions=True)
        publisher_stop.set()
        await asyncio.gather(publisher, return_exceptions=True)
        self._log.info("final counters: %s", _format_counters(self.counters()))

    # --- devices ----------------------------------------------------------------------------

    def _build_devices(self) -> _Devices:
        """Load profiles and make decoders (reads profile files: run in a worker thread)."""
        serial: list[tuple[DeviceConfig, int, SerialDecoder]] = []
        ble: dict[str, tuple[str, BLEDecoder]] = {}
        windows: dict[str, float] = {}
        for device in self.config.devices:
            profile = load_profile(device.profile)
            windows[device.id] = device.supervision_s or profile.supervision_s
            if profile.connection == "serial":
                baudrate = profile.serial.baudrate if profile.serial else 115200
                serial.append((device, baudrate, make_serial_decoder(profile, device.id)))
            else:
                assert device.address is not None
                decoder = make_ble_decoder(profile, device.id, device.address, device.key_bytes)
                ble[device.address] = (device.id, decoder)
        return _Devices(serial, ble, windows)

    def _on_observations(self, observations: list[Observation]) -> None:
        """From reader callbacks: queue for the writer, marked historical if not live now."""
        historical = not (self._publisher is not None and self._publisher.live)
        self.observations += len(observations)
        if self._supervisor is not None:
            self._supervisor.observe(observations)
        if self._repeats is not None:
            observations = self._repeats.admit(observations)
        if observations:
            self._queue.put_nowait((observations, historical))
        for obs in observations:
            if obs.kind == "event":
                self._log.bind(device=obs.device).info(
                    "event %s value=%s%s",
                    obs.name,
                    obs.value,
                    " (historical)" if historical else "",
                )

    async def _scan(self, backend: ScannerBackend, dispatcher: BLEDispatcher) -> None:
        """Run the scanner; while it cannot run, its devices are offline and it is retried."""
        retry_s = self.config.ble.retry_s
        while True:
            try:
                await backend.run(dispatcher, self._ble_scanning)
                return
            except BLEUnavailable as problem:
                self._ble_unavailable(problem, retry_s)
            except Exception:
                self._log.exception("BLE scanner backend failed; restarting in %.0f s", retry_s)
            finally:
                self._ble_links(up=False)
            await asyncio.sleep(retry_s)

    def _ble_scanning(self) -> None:
        if self._ble_problem is not None:
            self._log.info("BLE scanning works again (was: %s)", self._ble_problem)
            self._ble_problem = None
        self._ble_links(up=True)

    def _ble_links(self, up: bool) -> None:
        if self._supervisor is not None:
            for device_id in self._ble_devices:
                self._supervisor.link(device_id, up)

    def _ble_unavailable(self, problem: BLEUnavailable, retry_s: float) -> None:
        """Counted every time; logged with what to do once per reason, not every retry."""
        self.ble_unavailable[problem.reason] += 1
        first = self._ble_problem != problem.reason
        self._ble_problem = problem.reason
        report = self._log.error if first else self._log.debug
        report(
            "BLE unavailable (%s): %s. BLE devices (%s) are reported offline; serial devices "
            "carry on; retrying every %.0f s",
            problem.reason,
            problem.message,
            ", ".join(self._ble_devices),
            retry_s,
        )

    def _report_devices(self) -> None:
        if self._publisher is not None:
            self._publisher.report_devices()

    # --- outbox writer ----------------------------------------------------------------------

    async def _write(self, outbox: Outbox, publisher: Publisher) -> None:
        while True:
            first = await self._queue.get()
            pending, finished = _take_queued(self._queue, first)
            for observations, historical in _runs(pending):
                await self._append_retrying(outbox, observations, historical)
            publisher.notify()
            if finished:
                return

    async def _append_retrying(
        self, outbox: Outbox, observations: list[Observation], historical: bool
    ) -> None:
        while True:
            try:
                await outbox.append(observations, historical)
                return
            except Exception:  # disk full, I/O error: keep the items in memory and retry
                self._log.exception("cannot write %d items to the outbox", len(observations))
                await asyncio.sleep(1)

    async def _report_counters(self, stop: asyncio.Event) -> None:
        last: dict[str, int] = {}
        while not stop.is_set():
            await asyncio.sleep(self._counters_interval_s)
            now = self.counters()
            if now != last:
                self._log.info("counters: %s", _format_counters(now))
                last = now


def _take_queued(
    queue: asyncio.Queue[_Pending | None], first: _Pending | None
) -> tuple[list[_Pending], bool]:
    """Everything queued right now (one transaction for a burst); True if the end was seen."""
    taken: list[_Pending] = []
    item = first
    while True:
        if item is None:
            return taken, True
        taken.append(item)
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            return taken, False


def _runs(pending: list[_Pending]) -> list[tuple[list[Observation], bool]]:
    """Merge consecutive entries with the same historical flag, keeping order."""
    runs: list[tuple[list[Observation], bool]] = []
    for observations, historical in pending:
        if runs and runs[-1][1] == historical:
            runs[-1][0].extend(observations)
        else:
            runs.append((list(observations), historical))
    return runs


def _prefixed(prefix: str, items: Iterable[tuple[str, int]]) -> dict[str, int]:
    return {f"{prefix}.{key}": value for key, value in items}


def _format_counters(counts: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items()) if value)


def _configured_backend(config: EdgeConfig, log: ContextLogger) -> ScannerBackend | None:
    ble = config.ble
    if ble.backend == "simulated" and ble.socket is not None:
        return SimulatedAirBackend(ble.socket, log=log)
    if ble.backend == "bleak":
        return BleakBackend(ble.adapter, ble.scanning, log=log)
    return None


# --- entry points -----------------------------------------------------------------------------


async def main(config_path: str | Path) -> int:
    """Run the agent of `config_path` until SIGINT/SIGTERM. Returns the exit status."""
    try:
        config = await asyncio.to_thread(load_config, config_path)
    except ConfigError as exc:
        print(f"carewatch edge: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await EdgeAgent(config).run(stop)
    except ProfileError as exc:
        print(f"carewatch edge: {exc}", file=sys.stderr)
        return 2
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    return 0


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config FILE [--log-level LEVEL]`, for `carewatch edge` and `python -m edge.agent`;
    sets `func` to run the agent (returns the exit code)."""
    parser.add_argument("--config", required=True, type=Path, help="edge YAML configuration")
    parser.add_argument(
        "--log-level",
        dest="edge_log_level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: carewatch's --log-level, INFO)",
    )
    parser.set_defaults(func=run_agent_command)


def run_agent_command(args: argparse.Namespace) -> int:
    level = args.edge_log_level or getattr(args, "log_level", None) or "INFO"
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.getLogger().setLevel(level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main(args.config))
    return 130


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.agent", description="Run the carewatch edge agent."
    )
    add_agent_arguments(parser)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(_cli())
