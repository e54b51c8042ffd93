"""edge.serial_reader with real pseudo-terminals: frames in, observations out, unplug, replug."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import AsyncIterator
from pathlib import Path

from contract.wire import Observation
from device_profiles import load_profile
from edge.decoders.registry import make_serial_decoder
from edge.serial_reader import SerialReader
from tests.support.waiting import eventually

FALL = bytes.fromhex("53 59 83 01 00 01 01 32 54 43")  # MicRadar 83 01 = 01: fall
BAD_CHECKSUM = bytes.fromhex("53 59 83 01 00 01 01 33 54 43")


class Pty:
    """A pseudo-terminal 'device' behind a by-id style symlink."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self.slave))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.slave)
        os.close(self.master)


@contextlib.asynccontextmanager
async def reading(link: Path, received: list[Observation]) -> AsyncIterator[SerialReader]:
    profile = load_profile("seeed-mr60fda1")
    reader = SerialReader(
        "radar-b12",
        str(link),
        115200,
        make_serial_decoder(profile, "radar-b12"),
        received.extend,
        retry_s=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop))
    try:
        yield reader
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_fall_frame_from_a_pty(tmp_path: Path) -> None:
    link = tmp_path / "usb-radar"
    device = Pty(link)
    received: list[Observation] = []
    try:
        async with reading(link, received) as reader:
            await eventually(lambda: reader.is_open)
            before = time.time()
            device.write(BAD_CHECKSUM + FALL[:4])  # a bad frame, then a fall split in two
            await asyncio.sleep(0.05)
            device.write(FALL[4:])
            await eventually(lambda: len(received) == 1)
            (fall,) = received
            assert (fall.device, fall.kind, fall.name, fall.value) == (
                "radar-b12",
                "event",
                "fall",
                True,
            )
            assert before <= fall.at <= time.time()
            assert reader.decoder.rejected["bad_checksum"] == 1
    finally:
        device.unplug()


async def test_missing_port_is_retried_and_unplug_recovers(tmp_path: Path) -> None:
    link = tmp_path / "usb-radar"
    received: list[Observation] = []
    async with reading(link, received) as reader:
        await eventually(lambda: reader.errors["open_failed"] >= 2)  # not plugged in yet
        device = Pty(link)
        await eventually(lambda: reader.is_open)
        device.write(FALL)
        await eventually(lambda: len(received) == 1)

        device.unplug()  # the port errors; the reader closes it and keeps retrying
        await eventually(lambda: reader.errors["port_error"] == 1 and not reader.is_open)
        device = Pty(link)  # plugged back in, under the same by-id name
        try:
            await eventually(lambda: reader.is_open)
            device.write(FALL)
            await eventually(lambda: len(received) == 2)
        finally:
            device.unplug()
    assert all(obs.name == "fall" for obs in received)


async def test_reopens_when_the_by_id_link_goes_away_or_moves(tmp_path: Path) -> None:
    """udev removes the by-id name before the tty errors, or the name points at a new tty."""
    link = tmp_path / "usb-radar"
    old = Pty(link)
    received: list[Observation] = []
    try:
        async with reading(link, received) as reader:
            await eventually(lambda: reader.is_open)
            link.unlink()  # the old tty is still there and silent: only the name went
            await eventually(lambda: reader.errors["port_error"] == 1 and not reader.is_open)
            new = Pty(link)
            try:
                await eventually(lambda: reader.is_open)
                new.write(FALL)
                await eventually(lambda: len(received) == 1)
            finally:
                new.unplug()
    finally:
        old.unplug()
