"""Read one serial device (a UART radar) without blocking the event loop.

The port is opened with pyserial in non-blocking mode (`timeout=0`) and read from an
`add_reader` callback whenever the kernel has bytes: this works for USB-serial ttys and for the
pseudo-terminals of the simulators alike. Bytes go to the device's decoder with the wall-clock
time they were read at; the observations it returns go to a callback.

A port that is missing (not plugged in yet) or that fails (unplugged) is closed and reopened
every `retry_s` seconds. `/dev/serial/by-id/…` paths make the same device come back under the
same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import serial

from edge.logs import ContextLogger, context_logger
from edge.wire import Observation

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
    ) -> None:
        self.device_id = device_id
        self.port = port
        self.baudrate = baudrate
        self.decoder = decoder
        self._sink = on_observations
        self._clock = clock
        self._retry_s = retry_s
        self._log = (log or context_logger(__name__)).bind(device=device_id)
        self.errors: Counter[str] = Counter()
        self.bytes_read = 0
        self.is_open = False

    async def run(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            port = await self._open(quiet=failing)
            if port is None:
                failing = True
                await _wait(stop, self._retry_s)
                continue
            failing = False
            self._log.info("opened serial port %s at %d baud", self.port, self.baudrate)
            try:
                error = await self._read_until_error(port, stop)
            finally:
                self.is_open = False
                await asyncio.to_thread(port.close)
            if error is not None:
                self.errors["port_error"] += 1
                self._log.warning("serial port %s failed (%s); reopening", self.port, error)
                await _wait(stop, self._retry_s)

    async def _open(self, quiet: bool) -> serial.Serial | None:
        """Open the port in a worker thread (open() and termios calls may block on USB)."""
        try:
            port = await asyncio.to_thread(serial.Serial, self.port, self.baudrate, timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.errors["open_failed"] += 1
            report = self._log.debug if quiet else self._log.warning
            report(
                "cannot open serial port %s: %s; retrying every %.0f s",
                self.port,
                exc,
                self._retry_s,
            )
            return None
        self.is_open = True
        return port

    async def _read_until_error(
        self, port: serial.Serial, stop: asyncio.Event
    ) -> BaseException | None:
        """Feed the decoder from an add_reader callback; return the error, or None if stopped."""
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[BaseException] = loop.create_future()
        fd = port.fileno()
        loop.add_reader(fd, self._on_readable, port, failed)
        stopped = asyncio.ensure_future(stop.wait())
        waiters: list[asyncio.Future[Any]] = [failed, stopped]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            stopped.cancel()
        return failed.result() if failed.done() else None

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
        try:
            observations = self.decoder.feed(data, self._clock())
        except Exception:  # a decoder bug must not stop the port
            self.errors["decoder_error"] += 1
            self._log.exception("decoder failed on %d bytes", len(data))
            return
        if observations:
            self._sink(observations)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
