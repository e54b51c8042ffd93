"""BLE: scanner backends that report advertisements, and the dispatcher to device decoders.

A backend only reports what it hears (`Advertisement`, bleak's shape). `SimulatedAirBackend`
listens on a Unix datagram socket where the simulators put "air messages" (address, RSSI and the
raw AD structures); a bleak/habluetooth backend for real radios implements the same
`ScannerBackend` protocol.

`BLEDispatcher` routes each advertisement by address to the decoder of the provisioned device
that owns it. Adverts from other addresses (neighbours' phones, other beds' buttons) are counted
as `unknown_device` and ignored; decode failures are counted per device and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from edge.decoders.adstructures import decode_air_message, parse_advertising_data
from edge.decoders.base import Advertisement, DecodeError
from edge.logs import ContextLogger, context_logger
from edge.wire import Observation

AdvertSink = Callable[[Advertisement], None]
ObservationSink = Callable[[list[Observation]], None]
MAX_DATAGRAM = 65536


class ScannerBackend(Protocol):
    """Something that hears BLE advertisements and reports each one until cancelled."""

    async def run(self, on_advert: AdvertSink) -> None: ...


class BLEDecoder(Protocol):
    def decode(self, adv: Advertisement, at: float) -> list[Observation]: ...


class SimulatedAirBackend:
    """Adverts from the simulators' "air": datagrams on a Unix socket bound at `socket_path`."""

    def __init__(self, socket_path: str | Path, *, log: ContextLogger | None = None) -> None:
        self.socket_path = Path(socket_path)
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.ready = asyncio.Event()
        self._log = log or context_logger(__name__)

    async def run(self, on_advert: AdvertSink) -> None:
        sock = await asyncio.to_thread(self._bind)
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._on_readable, sock, on_advert)
        self.ready.set()
        self._log.info("listening for simulated BLE adverts on %s", self.socket_path)
        try:
            await asyncio.Future()  # until cancelled
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
            self.ready.clear()

    def _bind(self) -> socket.socket:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(self.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(self.socket_path))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _on_readable(self, sock: socket.socket, on_advert: AdvertSink) -> None:
        while True:
            try:
                datagram = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            self.received += 1
            advert = self._parse(datagram)
            if advert is not None:
                on_advert(advert)

    def _parse(self, datagram: bytes) -> Advertisement | None:
        try:
            address, rssi, raw = decode_air_message(datagram)
            return parse_advertising_data(address, rssi, raw)
        except DecodeError as exc:
            reason = f"bad_datagram.{exc.reason}"
        except ValueError:
            reason = "bad_datagram"
        self.rejected[reason] += 1
        report = self._log.warning if self.rejected[reason] == 1 else self._log.debug
        report("rejected a simulated advert (%s, %d bytes)", reason, len(datagram))
        return None


def _remove_stale_socket(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink()


class BLEDispatcher:
    """Routes adverts by address to the provisioned devices' decoders."""

    def __init__(
        self,
        decoders: Mapping[str, tuple[str, BLEDecoder]],
        on_observations: ObservationSink,
        *,
        clock: Callable[[], float] = time.time,
        log: ContextLogger | None = None,
    ) -> None:
        """`decoders` maps an address (any case) to (device id, decoder)."""
        self._decoders = {address.upper(): entry for address, entry in decoders.items()}
        self._sink = on_observations
        self._clock = clock
        log = log or context_logger(__name__)
        self._logs = {device: log.bind(device=device) for device, _ in self._decoders.values()}
        self.rejected: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()

    def __call__(self, advert: Advertisement) -> None:
        entry = self._decoders.get(advert.address.upper())
        if entry is None:
            self.rejected["unknown_device"] += 1
            return
        device_id, decoder = entry
        try:
            observations = decoder.decode(advert, self._clock())
        except DecodeError as exc:
            self._reject(device_id, exc.reason, exc.detail)
            return
        except Exception:  # a decoder bug must not stop the scanner
            self._reject(device_id, "decoder_error", "unexpected exception")
            self._logs[device_id].exception("decoder failed")
            return
        self.accepted[device_id] += 1
        if observations:
            self._sink(observations)

    def _reject(self, device_id: str, reason: str, detail: str) -> None:
        key = f"{device_id}.{reason}"
        self.rejected[key] += 1
        first = self.rejected[key] == 1
        log = self._logs[device_id]
        report = log.warning if first else log.debug
        report("rejected an advert: %s (%s)", reason, detail)
