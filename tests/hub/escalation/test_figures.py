"""Response-time figures on a hand-built record: known acknowledgement times give known shares."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carewatch.cli import build_parser
from carewatch.commands.report import run_report
from hub.access.permissions import Grant
from hub.access.users import UserStore
from hub.alerts.records import AlertRecords
from hub.core.audit import AuditEntry
from hub.core.store import Store
from hub.escalation.figures import load_nobody_reached, nobody_reached_counts, percentile, report
from hub.escalation.roster import Roster, RosterConfig
from hub.watch.settings import WatchConfig, WatchPolicy

UTC = ZoneInfo("UTC")
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
NIGHT_0300 = NOON - 9 * 3600
DAY_1000 = NOON - 2 * 3600
SINCE = NOON - 86400
ROSTER: dict[str, Any] = {
    "sites": {
        "sunrise": {
            "shifts": [
                {"name": "day", "start": "07:00", "end": "19:00"},
                {"name": "night", "start": "19:00", "end": "07:00"},
            ]
        }
    }
}
NIGHT_ACKS = [10, 20, 30, 40, 50, 55, 59, 60, 90, 200]


async def add(
    store: Store,
    opened_at: float,
    zone: str | None,
    ack_after: float | None,
    *,
    test: bool = False,
    priority: str = "emergency",
) -> int:
    acknowledged = None if ack_after is None else opened_at + ack_after
    resolved = None if acknowledged is None else acknowledged + 300
    fields = {
        "rule": "fall" if priority != "trouble" else "device_offline",
        "priority": priority,
        "state": "resolved" if resolved else "open",
        "subject": f"bed:{opened_at}",
        "site": "sunrise",
        "zone": zone,
        "test": int(test),
        "sensed_at": opened_at,
        "opened_at": opened_at,
        "last_triggered_at": opened_at,
        "acknowledged_at": acknowledged,
        "resolved_at": resolved,
    }
    alerts = AlertRecords(store)
    await alerts.create()
    alert_id = int(
        (await alerts.insert(fields, AuditEntry(opened_at, "system", "opened", None, {})))["id"]
    )
    if acknowledged is not None and resolved is not None:
        await record(
            store, alert_id, AuditEntry(acknowledged, "nurse", "acknowledged", "console", {})
        )
        await record(store, alert_id, AuditEntry(resolved, "nurse", "resolved", "console", {}))
    return alert_id


async def record(store: Store, alert_id: int, entry: AuditEntry) -> None:
    """One more entry in an alert's audit record, as the hub writes it."""
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO audit (at, actor, action, alert_id, channel, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.at,
                entry.actor,
                entry.action,
                alert_id,
                entry.channel,
                json.dumps(entry.detail),
            ),
        )


async def hand_built(store: Store) -> None:
    """Ten night alerts in the east wing with NIGHT_ACKS, three by day in the west (acknowledged
    in 30 s; never acknowledged after 10 min; opened 30 s ago), and what must not count."""
    for i, took in enumerate(NIGHT_ACKS):
        await add(store, NIGHT_0300 + i * 60, "east", took)
    await add(store, DAY_1000, "west", 30)
    await add(store, NOON - 600, "west", None)
    await add(store, NOON - 30, "west", None)
    await add(store, NIGHT_0300 + 1800, "east", 500, test=True)
    await add(store, NIGHT_0300 + 3600, "east", None, priority="trouble")
    await add(store, SINCE - 60, "east", 5)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    opened = await Store.open(tmp_path / "hub.db")
    await hand_built(opened)
    yield opened
    await opened.close()


def roster() -> Roster:
    policy = WatchPolicy(WatchConfig(defaults={"timezone": "UTC"}))
    return Roster(RosterConfig.model_validate(ROSTER), policy)


def row(document: dict[str, Any], by: str, group: str | None = None) -> dict[str, Any]:
    (found,) = [f for f in document["figures"] if f["by"] == by and f["group"] == group]
    return dict(found)


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None


async def test_figures_from_known_acknowledgement_times(store: Store) -> None:
    document = await report(store.db, roster(), since=SINCE, until=NOON, now=NOON)

    total = row(document, "total")
    assert (total["alerts"], total["acknowledged"], total["resolved"]) == (13, 11, 11)
    # Decided for both limits: 11 acknowledged + the one unanswered for 10 min; the alert
    # opened 30 s ago is neither a success nor a failure yet.
    assert total["ack_within_60s"] == pytest.approx(9 / 12)
    assert total["ack_within_180s"] == pytest.approx(10 / 12)
    assert (total["ack_median_s"], total["ack_p90_s"]) == (50, 90)
    assert total["meets_target"] is False

    east = row(document, "zone", "east")
    assert (east["alerts"], east["ack_within_60s"], east["ack_within_180s"]) == (10, 0.8, 0.9)
    assert (east["ack_median_s"], east["ack_p90_s"]) == (52.5, 90)
    assert (east["resolve_median_s"], east["resolve_p90_s"]) == (352.5, 390)
    assert row(document, "shift", "night") == {**east, "by": "shift", "group": "night"}

    day = row(document, "shift", "day")
    assert (day["alerts"], day["acknowledged"], day["ack_within_60s"]) == (3, 1, 0.5)
    assert row(document, "site")["alerts"] == 13


async def test_every_alert_answered_in_time_meets_the_target(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "quick.db")
    for i in range(5):
        await add(store, NIGHT_0300 + i * 60, "east", 12)
    document = await report(store.db, roster(), since=SINCE, until=NOON, now=NOON)
    await store.close()
    assert row(document, "total")["meets_target"] is True
    assert row(document, "total")["ack_within_60s"] == 1.0


async def answered(store: Store, opened_at: float, zone: str, **answers: float) -> int:
    """An alert left open, with the answers given (`action=seconds after opening`)."""
    alert_id = await add(store, opened_at, zone, None)
    for action, after in answers.items():
        actor = "nurse" if action == "acknowledged" else "daughter"
        entry = AuditEntry(opened_at + after, actor, action, "family_app", {})
        await record(store, alert_id, entry)
    return alert_id


async def reached_nobody(store: Store, alert_id: int, at: float, *reasons: str) -> None:
    """What the escalation engine writes when a step reaches nobody (hub/escalation/engine.py)."""
    for step, reason in enumerate(reasons):
        detail = {"step": step, "phase": "escalate", "reason": reason}
        await record(
            store, alert_id, AuditEntry(at + step, "system", "nobody_reached", None, detail)
        )
    async with store.transaction() as db:
        await db.execute("UPDATE alerts SET nobody_reached_at = ? WHERE id = ?", (at, alert_id))


async def test_a_relatives_answer_is_shown_apart_and_never_counts_as_staff(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "family.db")
    users = await UserStore.open(store)
    family = Grant(role="family", residents=("E-0001",))
    await users.create("daughter", "pw-daughter", family, display_name=None, actor="t", at=NOON)
    # Seen by the family at 10 s, acknowledged by staff at 90 s: a staff response of 90 s.
    await answered(store, NIGHT_0300, "east", family_seen=10, acknowledged=90)
    # "I'm handling it" at 20 s and nothing from staff, for 9 hours: no staff response at all.
    await answered(store, NIGHT_0300 + 60, "east", family_handling=20)
    # Before this version a relative could acknowledge: that is not a staff response either.
    await answered(store, NIGHT_0300 + 120, "east", acknowledged=5)
    async with store.transaction() as db:
        await db.execute("UPDATE audit SET actor = 'daughter' WHERE at = ?", (NIGHT_0300 + 125,))
    document = await report(store.db, roster(), since=SINCE, until=NOON, now=NOON)
    await store.close()

    east = row(document, "zone", "east")
    assert (east["alerts"], east["acknowledged"], east["ack_median_s"]) == (3, 1, 90)
    assert (east["ack_within_60s"], east["ack_within_180s"]) == (0.0, 1 / 3)
    assert (east["family_seen"], east["family_handling"]) == (1, 1)
    assert east["family_response_median_s"] == 15
    assert east["nobody_reached"] == 0


async def test_alerts_that_reached_nobody_are_counted_and_listed(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "nobody.db")
    fall = await add(store, NIGHT_0300, "west", 400)
    await reached_nobody(
        store, fall, NIGHT_0300, "no one on duty in West wing", "no charge nurse on duty"
    )
    await add(store, NIGHT_0300 + 60, "west", 30)  # reached someone
    day = await add(store, DAY_1000, "east", None)
    await reached_nobody(store, day, DAY_1000 + 1, "no one on duty in East wing")
    offline = await add(store, DAY_1000 + 60, None, None, priority="trouble")
    await reached_nobody(store, offline, DAY_1000 + 61, "no one on duty at the site")
    test_alert = await add(store, DAY_1000 + 120, "east", None, test=True)
    await reached_nobody(store, test_alert, DAY_1000 + 121, "walk test")
    document = await report(store.db, roster(), since=SINCE, until=NOON, now=NOON)
    listed = await load_nobody_reached(store.db, roster(), SINCE, NOON, "sunrise")
    await store.close()

    # The figures count the emergency and routine alerts that reached nobody, per group.
    assert row(document, "total")["nobody_reached"] == 2
    assert row(document, "zone", "west")["nobody_reached"] == 1
    assert row(document, "shift", "night")["nobody_reached"] == 1
    assert row(document, "shift", "day")["nobody_reached"] == 1
    # The list has every priority (test alerts never), with where, when, why and how often.
    assert [(a["id"], a["priority"], a["shift"], a["zone"]) for a in listed] == [
        (fall, "emergency", "night", "west"),
        (day, "emergency", "day", "east"),
        (offline, "trouble", "day", None),
    ]
    first = listed[0]
    assert (first["times"], first["reason"], first["nobody_reached_at"]) == (
        2,
        "no one on duty in West wing",
        NIGHT_0300,
    )
    assert [r["step"] for r in first["reasons"]] == [1, 2]
    assert (first["acknowledged_at"], first["acknowledged_by"]) == (NIGHT_0300 + 400, "nurse")
    assert listed[1]["acknowledged_at"] is None
    assert document["nobody_reached"]["alerts"] == listed
    counts = {(c["by"], c["group"]): c["alerts"] for c in nobody_reached_counts(listed)}
    assert counts == {
        ("total", None): 3,
        ("site", None): 3,
        ("zone", "west"): 1,
        ("zone", "east"): 1,
        ("zone", "(site-wide)"): 1,
        ("shift", "night"): 1,
        ("shift", "day"): 2,
    }


def write_config(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "hub.yaml"
    config.write_text(
        json.dumps(
            {
                "database": str(database),
                "web": {"secret_key": "s" * 40},
                "roster": ROSTER,
                "watch": {"defaults": {"timezone": "UTC"}},
            }
        )
    )
    return config


async def cli(*argv: str) -> tuple[int, str, str]:
    arguments = ["report", *argv]
    args: argparse.Namespace = build_parser(arguments).parse_args(arguments)
    out, err = io.StringIO(), io.StringIO()
    status = await run_report(args, out, err)
    return status, out.getvalue(), err.getvalue()


async def test_report_command_prints_the_figures(store: Store, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, tmp_path / "hub.db"))
    window = ("--since", "2026-11-21T12:00", "--until", "2026-11-22T12:00:00+00:00")

    status, out, err = await cli("--config", config, *window, "--format", "json")
    assert status == 0, err
    assert row(json.loads(out), "zone", "east")["ack_within_60s"] == 0.8
    assert "13 alert(s) from 2026-11-21T12:00:00+00:00" in err

    status, out, _ = await cli("--config", config, *window, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["by"], r["group"], r["alerts"]) for r in rows][:2] == [
        ("total", "", "13"),
        ("site", "", "13"),
    ]

    status, out, _ = await cli("--config", config, *window)
    assert status == 0
    assert "80.0 %" in out and "targets: 97.5 %" in out


async def test_report_command_says_what_is_wrong(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, tmp_path / "missing.db"))
    status, out, err = await cli("--config", config)
    assert (status, out) == (2, "")
    assert "no database at" in err

    (tmp_path / "missing.db").touch()
    status, _, err = await cli("--config", config, "--since", "last tuesday")
    assert status == 2 and "'last tuesday' is not an ISO 8601 time" in err
    status, _, err = await cli("--config", config, "--since", "2026-11-22", "--until", "2026-11-01")
    assert status == 2 and "since must be before until" in err
    status, _, err = await cli("--config", str(tmp_path / "nowhere.yaml"))
    assert status == 2 and "cannot read the file" in err
