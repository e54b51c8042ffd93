"""edge.outbox disk budget: oldest routine readings go first, events and emergencies never."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from contract.wire import Observation
from edge.config import EdgeConfig
from edge.outbox import (
    DEFAULT_MAX_BYTES,
    MIN_MAX_BYTES,
    DropRecord,
    Outbox,
    WireDict,
    is_protected,
)

BUDGET = MIN_MAX_BYTES
SLACK = 16 * 1024  # one append burst and a partly filled page or two
T0 = 1_700_000_000.0


def reading(i: int, name: str = "presence") -> Observation:
    return Observation("radar-101", T0 + i, "reading", name, i % 2 == 0)


def event(i: int) -> Observation:
    return Observation("radar-101", T0 + i, "event", "fall", True)


def stream(count: int) -> list[Observation]:
    """Mostly routine presence readings; every 50th a fall, a smoke or a door reading."""
    out: list[Observation] = []
    for i in range(count):
        if i % 150 == 0:
            out.append(event(i))
        elif i % 150 == 50:
            out.append(reading(i, "smoke"))
        elif i % 150 == 100:
            out.append(reading(i, "contact_open"))
        else:
            out.append(reading(i))
    return out


async def drain(outbox: Outbox) -> list[tuple[int, WireDict]]:
    """Everything pending, as (seq, item), checking that each batch is a contiguous run."""
    seen: list[tuple[int, WireDict]] = []
    while True:
        first, items = await outbox.next_batch(500)
        if not items:
            return seen
        seen.extend((first + offset, item) for offset, item in enumerate(items))
        await outbox.acknowledge(first + len(items) - 1)


def test_the_protected_set() -> None:
    assert is_protected(event(1))
    assert is_protected(Observation("button-101", T0, "event", "call_button", "press"))
    assert is_protected(reading(1, "smoke")) and is_protected(reading(1, "contact_open"))
    assert not is_protected(reading(1, "presence"))
    assert not is_protected(Observation("radar-101", T0, "reading", "heart_rate", 60))


async def test_over_budget_the_oldest_routine_readings_go_first(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.db", max_bytes=BUDGET)
    try:
        written = stream(3000)
        for start in range(0, len(written), 10):  # bursts, as the agent's writer appends them
            await outbox.append(written[start : start + 10], historical=True)
            assert await outbox.used_bytes() <= BUDGET + SLACK
        record = await outbox.dropped()
        kept = await drain(outbox)
    finally:
        await outbox.close()

    by_seq = dict(enumerate(written, start=1))
    kept_seqs = {seq for seq, _ in kept}
    dropped = [seq for seq in by_seq if seq not in kept_seqs]
    assert dropped, "the stream is several times the budget: something must have gone"
    assert all(not is_protected(by_seq[seq]) for seq in dropped)
    assert all(seq in kept_seqs for seq, obs in by_seq.items() if is_protected(obs))
    routine_kept = [seq for seq in kept_seqs if not is_protected(by_seq[seq])]
    assert max(dropped) < min(routine_kept), "drops must be the oldest routine readings"
    assert [item for _, item in kept] == [by_seq[seq].to_wire(True) for seq, _ in kept]
    assert record == DropRecord(
        count=len(dropped),
        first_at=by_seq[min(dropped)].at,
        last_at=by_seq[max(dropped)].at,
        last_seq=max(dropped),
    )


async def test_the_drop_record_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = await Outbox.open(path, max_bytes=BUDGET)
    await outbox.append([reading(i) for i in range(3000)], historical=False)
    before = await outbox.dropped()
    await outbox.close()
    assert before.count > 0
    again = await Outbox.open(path, max_bytes=BUDGET)
    try:
        assert await again.dropped() == before
    finally:
        await again.close()


async def test_only_protected_items_are_kept_over_budget_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.db", max_bytes=BUDGET)
    try:
        with caplog.at_level(logging.WARNING, logger="edge.outbox"):
            for start in range(0, 2000, 100):
                await outbox.append([event(i) for i in range(start, start + 100)], False)
        assert await outbox.pending() == 2000
        assert await outbox.used_bytes() > BUDGET
        assert await outbox.dropped() == DropRecord()
    finally:
        await outbox.close()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "logged loudly, but not on every append"
    assert "only events and emergency readings" in errors[0].getMessage()


async def test_a_lowered_budget_applies_at_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = await Outbox.open(path)
    await outbox.append([reading(i) for i in range(5000)], historical=False)
    assert await outbox.used_bytes() > BUDGET
    await outbox.close()
    smaller = await Outbox.open(path, max_bytes=BUDGET)
    try:
        assert await smaller.used_bytes() <= BUDGET
        assert (await smaller.dropped()).count > 0
    finally:
        await smaller.close()


async def test_an_outbox_from_before_the_budget_gets_its_protected_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    old = [event(0), reading(1, "smoke"), reading(2), reading(3, "contact_open")] + [
        reading(i) for i in range(4, 3000)
    ]
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);"
            "CREATE TABLE items (seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL);"
        )
        db.executemany(
            "INSERT INTO items (item) VALUES (?)",
            [(f'{{"dev":"radar-101","at":{o.at},"{o.kind}":"{o.name}"}}',) for o in old],
        )
    db.close()
    outbox = await Outbox.open(path, max_bytes=BUDGET)
    try:
        kept = await drain(outbox)
    finally:
        await outbox.close()
    names = [(seq, item.get("event") or item.get("reading")) for seq, item in kept]
    assert names[:3] == [(1, "fall"), (2, "smoke"), (4, "contact_open")]


def test_config_budget_default_and_minimum() -> None:
    base = {"site": "sunrise", "gateway": "gw-east"}
    config = EdgeConfig.model_validate({**base, "outbox": {"path": "/tmp/o.db"}})
    assert config.outbox.max_bytes == DEFAULT_MAX_BYTES == 50_000_000
    with pytest.raises(ValueError, match="max_bytes"):
        EdgeConfig.model_validate({**base, "outbox": {"path": "/tmp/o.db", "max_bytes": 1000}})


async def test_one_big_burst_overshoots_by_at_most_one_chunk(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.db", max_bytes=BUDGET)
    try:
        await outbox.append([reading(i) for i in range(5000)], historical=True)
        assert await outbox.used_bytes() <= BUDGET + SLACK
        kept = await drain(outbox)
    finally:
        await outbox.close()
    assert [seq for seq, _ in kept] == list(range(5001 - len(kept), 5001)), "the newest stay"
