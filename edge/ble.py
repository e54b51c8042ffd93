"""BLE: scanner backends that report advertisements, and the dispatcher to device decoders.

A backend only reports what it hears (`Advertisement`, bleak's shape) and says when it is
listening (`on_scanning`). Two implement the `ScannerBackend` protocol:

- `BleakBackend`: the real radio through bleak and BlueZ (D-Bus). Passive scanning where BlueZ
  supports it (BlueZ >= 5.56 with --experimental, Linux >= 5.10): the radio only listens, and
  BlueZ passes on only adverts carrying BTHome (0xFCD2) or Xiaomi MiBeacon (0xFE95) service data.
  Otherwise active scanning, with a warning. A missing D-Bus, BlueZ or adapter raises
  `BLEUnavailable`, whose message says what to do.
- `SimulatedAirBackend`: a Unix datagram socket where the simulators put "air messages"
  (address, RSSI and the raw AD structures).

`BLEDispatcher` routes each advertisement by address to the decoder of the provisioned device
that owns it. Adverts from other addresses (neighbours' phones, other beds' buttons) are counted
as `unknown_device` and ignored, without a log line each; decode failures are counted per device
and reason. Every accepted advert tells the supervisor the device was heard, with its RSSI.
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
from typing import Final, Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from contract.wire import Observation
from edge.decoders.adstructures import decode_air_message, parse_advertising_data
from edge.decoders.base import Advertisement, DecodeError
from edge.logs import ContextLogger, context_logger
from edge.supervision import DeviceWatch

AdvertSink = Callable[[Advertisement], None]
ObservationSink = Callable[[list[Observation]], None]
ScanningMode = Literal["auto", "passive", "active"]
MAX_DATAGRAM = 65536
PASSIVE_SERVICE_UUIDS16: Final = (0xFCD2, 0xFE95)  # BTHome v2, Xiaomi MiBeacon
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0


class ScannerBackend(Protocol):
    """Something that hears BLE advertisements and reports each one until cancelled.

    `on_scanning` is called once it is listening. `run` raises `BLEUnavailable` if the radio
    cannot be used (the caller retries later), and returns or raises when it stops listening.
    """

    async def run(
        self, on_advert: AdvertSink, on_scanning: Callable[[], None] | None = None
    ) -> None: ...


class BLEUnavailable(Exception):
    """The radio cannot be used. `reason` is a short code; the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def advertisement_from_bleak(device: BLEDevice, data: AdvertisementData) -> Advertisement:
    """Our Advertisement from bleak's pair (service data is already keyed by full UUID)."""
    return Advertisement(
        address=device.address.upper(),
        rssi=data.rssi,
        service_data=dict(data.service_data),
        local_name=data.local_name,
        manufacturer_data=dict(data.manufacturer_data),
    )


def passive_patterns(uuids16: tuple[int, ...] = PASSIVE_SERVICE_UUIDS16) -> list[OrPattern]:
    """BlueZ advertisement-monitor patterns: 16-bit service data (AD type 0x16) for `uuids16`."""
    return [
        OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, uuid.to_bytes(2, "little"))
        for uuid in uuids16
    ]


class BleakBackend:
    """Adverts from a real Bluetooth adapter through bleak and BlueZ.

    `scanning`: "passive" only listens (needs BlueZ >= 5.56 with --experimental); "active" also
    sends scan requests (any BlueZ); "auto" tries passive and falls back to active with a
    warning, once: restart the agent after enabling passive support.
    """

    def __init__(
        self,
        adapter: str | None = None,
        scanning: ScanningMode = "auto",
        *,
        service_uuids16: tuple[int, ...] = PASSIVE_SERVICE_UUIDS16,
        start_timeout_s: float = START_TIMEOUT_S,
        log: ContextLogger | None = None,
    ) -> None:
        self.adapter = adapter
        self.scanning = scanning
        self.mode: Literal["passive", "active"] | None = None  # in use while scanning
        self.ready = asyncio.Event()
        self._patterns = passive_patterns(service_uuids16)
        self._start_timeout_s = start_timeout_s
        self._passive_unsupported = False
        self._log = log or context_logger(__name__)

    @property
    def adapter_name(self) -> str:
        return self.adapter or "the first powered adapter"

    async def run(
        self, on_advert: AdvertSink, on_scanning: Callable[[], None] | None = None
    ) -> None:
        def detected(device: BLEDevice, data: AdvertisementData) -> None:
            on_advert(advertisement_from_bleak(device, data))

        scanner = await self._start(detected)
        self.ready.set()
        self._log.info("BLE scanning on %s (%s)", self.adapter_name, self.mode)
        if on_scanning is not None:
            on_scanning()
        try:
            await asyncio.Future()  # until cancelled
        finally:
            self.ready.clear()
            self.mode = None
            await _stop_quietly(scanner)

    async def _start(
        self, detected: Callable[[BLEDevice, AdvertisementData], None]
    ) -> BleakScanner:
        if self.scanning != "active" and not self._passive_unsupported:
            try:
                return await self._start_mode(detected, "passive")
            except BLEUnavailable as problem:
                if problem.reason != "passive_unsupported" or self.scanning == "passive":
                    raise
                self._passive_unsupported = True
                self._log.warning("%s; falling back to active scanning", problem.message)
        return await self._start_mode(detected, "active")

    async def _start_mode(
        self,
        detected: Callable[[BLEDevice, AdvertisementData], None],
        mode: Literal["passive", "active"],
    ) -> BleakScanner:
        bluez = BlueZScannerArgs()
        if self.adapter is not None:
            bluez["adapter"] = self.adapter
        if mode == "passive":
            bluez["or_patterns"] = list(self._patterns)
        try:
            scanner = BleakScanner(detected, scanning_mode=mode, bluez=bluez)
        except BleakError as exc:
            raise bluetooth_problem(exc, self.adapter) from exc
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await scanner.start()
        except (BleakError, OSError, TimeoutError) as exc:
            await _stop_quietly(scanner)
            raise bluetooth_problem(exc, self.adapter) from exc
        self.mode = mode
        return scanner


async def _stop_quietly(scanner: BleakScanner) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await scanner.stop()


_INSTALL_BLUEZ: Final = (
    "install and start BlueZ: `sudo apt install bluez` then "
    "`sudo systemctl enable --now bluetooth`; `bluetoothctl list` must then show the adapter"
)
_POWER_ON: Final = (
    "`rfkill list` must not show it blocked (`sudo rfkill unblock bluetooth`), "
    "then `bluetoothctl power on`"
)
_DBUS_PERMISSION: Final = (
    "run the agent as a user allowed to use BlueZ over D-Bus "
    "(e.g. `sudo usermod -aG bluetooth carewatch`, then restart the agent)"
)
_PASSIVE: Final = (
    "passive BLE scanning needs BlueZ >= 5.56 started with --experimental and Linux >= 5.10 "
    "(add --experimental to bluetoothd's ExecStart with `sudo systemctl edit bluetooth`), "
    "or set ble.scanning: active"
)
_DBUS_REASONS: Final = {
    "org.freedesktop.DBus.Error.ServiceUnknown": "no_bluez",
    "org.freedesktop.DBus.Error.NameHasNoOwner": "no_bluez",
    "org.freedesktop.DBus.Error.AccessDenied": "denied",
    "org.bluez.Error.NotReady": "powered_off",
}
_AVAILABILITY_REASONS: Final = {
    BleakBluetoothNotAvailableReason.NO_BLUETOOTH: "no_adapter",
    BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE: "no_adapter",
    BleakBluetoothNotAvailableReason.POWERED_OFF: "powered_off",
    BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM: "denied",
    BleakBluetoothNotAvailableReason.DENIED_BY_USER: "denied",
    BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN: "denied",
}


def bluetooth_problem(exc: BaseException, adapter: str | None) -> BLEUnavailable:
    """What went wrong starting a scan, as a reason code and a message saying what to do."""
    reason = _reason(exc)
    name = adapter or "(first powered adapter)"
    advice = {
        "no_dbus": f"no D-Bus system bus at {_system_bus()} ({exc}): BlueZ is reached over "
        f"D-Bus; {_INSTALL_BLUEZ}",
        "no_bluez": f"BlueZ (org.bluez) is not running on the D-Bus system bus; {_INSTALL_BLUEZ}",
        "no_adapter": (
            f"Bluetooth adapter {name} not found ({exc}): check `bluetoothctl list` and "
            "`hciconfig -a`, plug the adapter in or enable the onboard one, and set ble.adapter "
            "to an adapter that exists (or leave it out to use the first one)"
        ),
        "powered_off": f"Bluetooth adapter {name} is off or blocked ({exc}): {_POWER_ON}",
        "denied": f"not allowed to use Bluetooth ({exc}): {_DBUS_PERMISSION}",
        "passive_unsupported": f"{_PASSIVE} ({exc})",
        "timeout": f"BlueZ did not answer within {START_TIMEOUT_S:.0f} s: check "
        "`systemctl status bluetooth` and `bluetoothctl list`",
    }.get(reason, f"cannot start BLE scanning on {name}: {exc!r}")
    return BLEUnavailable(reason, advice)


def _system_bus() -> str:
    default = "unix:path=/run/dbus/system_bus_socket"
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", default).removeprefix("unix:path=")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, OSError):  # the system bus socket is missing or refuses
        return "no_dbus"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return _AVAILABILITY_REASONS.get(exc.reason, "unavailable")
    if isinstance(exc, BleakDBusError):
        return _DBUS_REASONS.get(exc.dbus_error, "dbus_error")
    text = str(exc)
    if "passive scanning" in text:
        return "passive_unsupported"
    if "adapter" in text and "not found" in text:
        return "no_adapter"
    return "error"


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

    async def run(
        self, on_advert: AdvertSink, on_scanning: Callable[[], None] | None = None
    ) -> None:
        sock = await asyncio.to_thread(self._bind)
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._on_readable, sock, on_advert)
        self.ready.set()
        self._log.info("listening for simulated BLE adverts on %s", self.socket_path)
        if on_scanning is not None:
            on_scanning()
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
        watch: DeviceWatch | None = None,
    ) -> None:
        """`decoders` maps an address (any case) to (device id, decoder)."""
        self._decoders = {address.upper(): entry for address, entry in decoders.items()}
        self._sink = on_observations
        self._clock = clock
        self._watch = watch
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
        if self._watch is not None:
            self._watch.heard(device_id, advert.rssi)
        if observations:
            self._sink(observations)

    def _reject(self, device_id: str, reason: str, detail: str) -> None:
        key = f"{device_id}.{reason}"
        self.rejected[key] += 1
        first = self.rejected[key] == 1
        log = self._logs[device_id]
        report = log.warning if first else log.debug
        report("rejected an advert: %s (%s)", reason, detail)
