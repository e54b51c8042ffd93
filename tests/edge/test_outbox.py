"""edge.outbox: ordered, contiguous sequence numbers, a stable epoch, a persisted bdseq."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from contract.wire import Observation
from edge.outbox import Outbox
from tests.support.paths import REPO


def obs(i: int, name: str = "heart_rate") -> Observation:
    return Observation(
        device="radar-b12", at=1_700_000_000.0 + i, kind="reading", name=name, value=i
    )


async def test_append_next_batch_acknowledge_in_order(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.db")
    try:
        assert await outbox.next_batch(10) == (0, [])
        await outbox.append([obs(1), obs(2), obs(3)], historical=False)
        await outbox.append([obs(4)], historical=True)
        first, items = await outbox.next_batch(3)
        assert first == 1
        assert [item["value"] for item in items] == [1, 2, 3]
        assert items[0] == {
            "dev": "radar-b12",
            "at": 1_700_000_001.0,
            "reading": "heart_rate",
            "value": 1,
        }
        await outbox.acknowledge(3)
        first, items = await outbox.next_batch(10)
        assert (first, items) == (4, [obs(4).to_wire(historical=True)])
        assert items[0]["hist"] is True
        await outbox.acknowledge(4)
        assert await outbox.pending() == 0
        # AUTOINCREMENT: numbers are never reused, even after the newest rows were deleted
        await outbox.append([obs(5)], historical=False)
        assert (await outbox.next_batch(10))[0] == 5
    finally:
        await outbox.close()


async def test_acknowledge_is_idempotent_and_partial(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.db")
    try:
        await outbox.append([obs(i) for i in range(1, 11)], historical=False)
        await outbox.acknowledge(4)
        await outbox.acknowledge(2)  # a late, older acknowledgement changes nothing
        first, items = await outbox.next_batch(100)
        assert first == 5
        assert len(items) == 6
    finally:
        await outbox.close()


async def test_epoch_and_bdseq_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "outbox.db"  # the parent directory is created
    outbox = await Outbox.open(path)
    epoch = outbox.epoch
    assert len(epoch) == 16 and int(epoch, 16) >= 0
    assert await outbox.bdseq() == 0
    assert await outbox.next_bdseq() == 1
    assert await outbox.next_bdseq() == 2
    await outbox.append([obs(1), obs(2)], historical=False)
    await outbox.close()

    again = await Outbox.open(path)
    try:
        assert again.epoch == epoch
        assert await again.next_bdseq() == 3
        assert await again.next_batch(10) == (1, [obs(1).to_wire(), obs(2).to_wire()])
    finally:
        await again.close()

    other = await Outbox.open(tmp_path / "other.db")
    assert other.epoch != epoch  # a new database is a new epoch
    await other.close()


_WRITER = """
import asyncio, os, sys
from edge.outbox import Outbox
from contract.wire import Observation

async def main():
    outbox = await Outbox.open(sys.argv[1])
    await outbox.append([Observation("radar-b12", 1.0e9, "event", "fall", True)], False)
    print("written", flush=True)
    os.kill(os.getpid(), 9)  # no close, no clean exit

asyncio.run(main())
"""


async def test_committed_items_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == -9, stderr.decode()
    assert stdout.decode().strip() == "written"
    outbox = await Outbox.open(path)
    try:
        first, items = await outbox.next_batch(10)
        assert (first, items) == (
            1,
            [{"dev": "radar-b12", "at": 1.0e9, "event": "fall", "value": True}],
        )
    finally:
        await outbox.close()
