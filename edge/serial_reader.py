"""Read one serial device (a UART radar) without blocking the event loop.

The port is opened with pyserial in non-blocking mode (`timeout=0`) and read from an
`add_reader` callback whenever the kernel has bytes: this works for USB-serial ttys and for the
pseudo-terminals of the simulators alike. Bytes go to the device's decoder with the wall-clock
time they were read at; the observations it returns go to a callback.

Configs name stable paths (`/dev/serial/by-id/usb-…`, symlinks that udev makes for each USB
adapter). The path is resolved again on every open, so the device comes back under the same
name whichever `ttyUSBn` it gets after being plugged back in. An unplugged device shows as a
read error (EIO on a hung-up tty or pty), as end of file (readable but no data: pyserial raises),
or as its path going away or pointing elsewhere (checked every `retry_s`). The reader then closes
the port, tells the supervisor at once (`watch.link(device, False)`: the device is offline), and
tries to reopen the path every `retry_s` seconds.

Every frame the decoder accepts counts as hearing from the device (`watch.heard`), heartbeats
that yield no observation included.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import serial

from contract.wire import Observation
from edge.logs import ContextLogger, context_logger
from edge.supervision import DeviceWatch

READ_CHUNK = 4096


class SerialDecoder(Protocol):
    rejected: Counter[str]

    def feed(self, data: bytes, at: float) -> list[Observation]: ...


ObservationSink = Callable[[list[Observation]], None]


class SerialReader:
    """Reads `port` into `decoder` until stopped, reopening it after errors."""

    def __init__(
        self,
        device_id: str,
        port: str,
        baudrate: int,
        decoder: SerialDecoder,
        on_observations: ObservationSink,
        *,
        clock: Callable[[], float] = time.time,
        retry_s: float = 3.0,
        log: ContextLogger | None = None,
        watch: DeviceWatch | None = None,
    ) -> None:
        self.device_id = device_id
        self.port = port
        self.baudrate = baudrate
        self.decoder = decoder
        self._sink = on_observations
        self._clock = clock
        self._retry_s = retry_s
        self._log = (log or context_logger(__name__)).bind(device=device_id)
        self._watch = watch
        self.errors: Counter[str] = Counter()
        self.bytes_read = 0
        self.is_open = False

    async def run(self, stop: asyncio.Event) -> None:
        quiet = False  # after the first failure is logged, retries log at debug level
        while not stop.is_set():
            opened = await self._open(quiet)
            if opened is None:
                quiet = True
                await _wait(stop, self._retry_s)
                continue
            port, target = opened
            self._log.info(
                "opened serial port %s (%s) at %d baud", self.port, target, self.baudrate
            )
            error = await self._serve(port, target, stop)
            quiet = error is not None
            if error is not None:
                self.errors["port_error"] += 1
                self._log.warning(
                    "serial port %s lost (%s): device offline; reopening every %g s",
                    self.port,
                    error,
                    self._retry_s,
                )
                await _wait(stop, self._retry_s)

    async def _open(self, quiet: bool) -> tuple[serial.Serial, str] | None:
        """Resolve the path and open it, in a worker thread (open() and termios may block)."""
        try:
            return await asyncio.to_thread(self._open_blocking)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.errors["open_failed"] += 1
            report = self._log.debug if quiet else self._log.warning
            report(
                "cannot open serial port %s: %s; retrying every %g s",
                self.port,
                exc,
                self._retry_s,
            )
            return None

    def _open_blocking(self) -> tuple[serial.Serial, str]:
        target = str(Path(self.port).resolve(strict=True))
        return serial.Serial(target, self.baudrate, timeout=0, exclusive=True), target

    async def _serve(
        self, port: serial.Serial, target: str, stop: asyncio.Event
    ) -> BaseException | None:
        """Read until an error (returned) or `stop` (None); the link is up meanwhile."""
        self._set_open(True)
        try:
            return await self._read_until_error(port, target, stop)
        finally:
            self._set_open(False)
            await asyncio.to_thread(port.close)

    def _set_open(self, is_open: bool) -> None:
        self.is_open = is_open
        if self._watch is not None:
            self._watch.link(self.device_id, is_open)

    async def _read_until_error(
        self, port: serial.Serial, target: str, stop: asyncio.Event
    ) -> BaseException | None:
        """Feed the decoder from an add_reader callback; return the error, or None if stopped."""
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[BaseException] = loop.create_future()
        fd = port.fileno()
        loop.add_reader(fd, self._on_readable, port, failed)
        stopped = asyncio.ensure_future(stop.wait())
        moved = asyncio.ensure_future(self._path_changed(target))
        waiters: list[asyncio.Future[Any]] = [failed, stopped, moved]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            stopped.cancel()
            moved.cancel()
        if failed.done():
            return failed.result()
        return moved.result() if moved.done() and not moved.cancelled() else None

    async def _path_changed(self, target: str) -> BaseException:
        """Wait until the configured path is gone or points elsewhere (checked every retry_s)."""
        while True:
            await asyncio.sleep(self._retry_s)
            now = await asyncio.to_thread(_resolve, self.port)
            if now != target:
                where = f"now points to {now}" if now else "is gone"
                return FileNotFoundError(f"{self.port} {where}")

    def _on_readable(self, port: serial.Serial, failed: asyncio.Future[BaseException]) -> None:
        if failed.done():
            return
        try:
            data = port.read(READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            failed.set_result(exc)
            return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        self.bytes_read += len(data)
        frames_before = frames_framed(self.decoder)
        try:
            observations = self.decoder.feed(data, self._clock())
        except Exception:  # a decoder bug must not stop the port
            self.errors["decoder_error"] += 1
            self._log.exception("decoder failed on %d bytes", len(data))
            return
        if self._watch is not None and (
            observations or frames_framed(self.decoder) != frames_before
        ):
            self._watch.heard(self.device_id)
        if observations:
            self._sink(observations)


def frames_framed(decoder: SerialDecoder) -> int:
    """How many valid frames the decoder has taken so far, as far as it tells.

    A decoder's `frames` counter if it has one; otherwise the frames it framed but had no rule
    for (`unmapped`, e.g. MicRadar heartbeats). Frames with a rule show up as observations.
    """
    frames = getattr(decoder, "frames", None)
    if isinstance(frames, int):
        return frames
    unmapped = getattr(decoder, "unmapped", None)
    return sum(unmapped.values()) if isinstance(unmapped, Counter) else 0


def _resolve(path: str) -> str | None:
    try:
        return str(Path(path).resolve(strict=True))
    except OSError:
        return None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
