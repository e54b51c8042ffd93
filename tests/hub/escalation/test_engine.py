"""Escalation through a real hub and Mosquitto: who is told, at which step, and when.

The hub's clock is a manual clock that the test moves, so minutes pass in moments. Every
notification attempt is read back from the hub's own record (`/api/alerts/{id}/escalation`).
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from hub.access.auth import hash_password
from hub.alerts.lifecycle import AlertError
from hub.app import Hub
from hub.escalation.engine import Escalation
from hub.escalation.policy import EscalationConfig, Step
from tests.conftest import NURSE, SMALL_SITE, HubFactory, PublishBatch
from tests.hub.notify.test_apprise import LoopbackHttp, closed_port
from tests.support.clock import FakeClock
from tests.support.notifier import RecordingNotifier
from tests.support.waiting import eventually

NIGHT_0300 = datetime(2026, 11, 22, 3, 0, tzinfo=ZoneInfo("UTC")).timestamp()
PASSWORD = "escalation-test-pw"
STAFF = ("carer-east", "carer-west", "sister", "day-sister")
ROSTER = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "day",
                    "start": "07:00",
                    "end": "19:00",
                    "charge_nurse": "day-sister",
                    "assignments": [{"user": "nurse"}],
                },
                {
                    "name": "night",
                    "start": "19:00",
                    "end": "07:00",
                    "charge_nurse": "sister",
                    "assignments": [
                        {"user": "carer-east", "zones": ["east"]},
                        {"user": "carer-west", "zones": ["west"]},
                    ],
                },
            ]
        }
    }
}
ESCALATION = {
    "defaults": {
        "steps": [
            {"after_min": 0, "notify": "on_duty_zone"},
            {"after_min": 2, "notify": "charge_nurse"},
            {"after_min": 5, "notify": "family_contacts"},
        ],
        "repeat_every_min": 5,
        "realert_after_min": 20,
    }
}
DAUGHTER = {"name": "Anna Jones", "relation": "family", "phone": "+44 7700 900123"}


def site_with_contacts() -> dict[str, Any]:
    site = copy.deepcopy(SMALL_SITE)
    resident = site["zones"][0]["rooms"][0]["beds"][0]["resident"]
    resident["contacts"] = [DAUGHTER]
    return site


def users() -> list[dict[str, Any]]:
    nurse = {
        "username": NURSE[0],
        "password_hash": hash_password(NURSE[1]),
        "role": "staff",
        "sites": ["*"],
    }
    digest = hash_password(PASSWORD)
    manager = {"username": "manager", "password_hash": digest, "role": "supervisor", "sites": ["*"]}
    return [nurse, manager] + [
        {
            "username": name,
            "display_name": name.title(),
            "password_hash": digest,
            "role": "staff",
            "sites": ["*"],
        }
        for name in STAFF
    ]


class Night:
    """A hub at 03:00 with a night roster, a recording notifier and a manual clock."""

    def __init__(self, hub: Hub, clock: FakeClock, publish: PublishBatch) -> None:
        self.hub = hub
        self.clock = clock
        self.recorder = RecordingNotifier()
        self._publish = publish
        self._seq = 0
        assert hub.escalation is not None
        hub.escalation.add_notifier(self.recorder)

    async def send(self, item: dict[str, Any]) -> int:
        """Publish one item from gw-east; return the id of the alert it opens."""
        self._seq += 1
        await self._publish("sunrise", "gw-east", [{**item, "at": self.clock.now()}], seq=self._seq)

        async def opened() -> bool:
            return bool(await self.hub.alerts.records.page(("open",), 10))

        await eventually(opened)
        (alert,) = await self.hub.alerts.records.page(("open",), 10)
        if not alert["test"]:
            await self.first_step(int(alert["id"]))
        return int(alert["id"])

    async def first_step(self, alert_id: int) -> None:
        """Until the alert's first step has fired and been delivered (it is due at once)."""

        async def fired() -> bool:
            async with self.hub.store.db.execute(
                "SELECT count(*) FROM escalation_steps WHERE alert_id = ?", (alert_id,)
            ) as cur:
                row = await cur.fetchone()
            return row is not None and row[0] > 0

        await eventually(fired)
        await self.settled()

    async def until_steps(self, alert_id: int, count: int) -> None:
        """Until `count` firings of the alert are recorded with their attempts, and delivered:
        a step that reached nobody records its fallback just after its own delivery, and a step
        is recorded just before its attempts, so "nothing pending" alone may be seen in between.
        Every step has at least one attempt (`no_recipient` when it names nobody)."""

        async def recorded() -> bool:
            async with self.hub.store.db.execute(
                "SELECT count(*) FROM escalation_steps s WHERE alert_id = ? AND EXISTS "
                "(SELECT 1 FROM notifications n WHERE n.step_id = s.id)",
                (alert_id,),
            ) as cur:
                row = await cur.fetchone()
            return row is not None and row[0] >= count

        await eventually(recorded)
        await self.settled()

    async def pass_time(self, seconds: float) -> None:
        """Move the clock a minute at a time, letting due steps fire and deliver."""
        while seconds > 0:
            self.clock.advance(min(60.0, seconds))
            seconds -= 60.0
            await asyncio.sleep(0.05)
        await self.settled()

    async def settled(self) -> None:
        """Until no attempt is still pending delivery."""

        async def delivered() -> bool:
            async with self.hub.store.db.execute(
                "SELECT count(*) FROM notifications WHERE result = 'pending'"
            ) as cur:
                row = await cur.fetchone()
            return row is not None and row[0] == 0

        await eventually(delivered)

    async def record(self, alert_id: int) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            await login(client, NURSE[0], NURSE[1])
            response = await client.get(f"/api/alerts/{alert_id}/escalation")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def reached(self, alert_id: int) -> list[tuple[str, int, float, list[str]]]:
        """(phase, step, at, recipients reached through the recording notifier) per firing."""
        steps = (await self.record(alert_id))["steps"]
        return [
            (
                "repeat"
                if step["phase"] == "escalate" and step["n"] != step["step"]
                else step["phase"],
                step["step"],
                step["at"] - NIGHT_0300,
                [
                    a["recipient"]
                    for a in step["attempts"]
                    if a["channel"] == "recording" and a["result"] == "delivered"
                ],
            )
            for step in steps
        ]

    async def act(self, alert_id: int, user: str, action: str) -> None:
        body = {"outcome": "assisted_no_injury"} if action == "resolve" else {}
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            csrf = await login(client, user, PASSWORD)
            response = await client.post(
                f"/api/alerts/{alert_id}/{action}", json=body, headers={"X-CSRF-Token": csrf}
            )
        assert response.status_code == 200, response.text


async def login(client: httpx.AsyncClient, user: str, password: str) -> str:
    response = await client.post("/api/login", json={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


@pytest.fixture
def night(hub_factory: HubFactory, publish_batch: PublishBatch) -> Any:
    clock = FakeClock(NIGHT_0300)

    async def start(**overrides: Any) -> Night:
        config: dict[str, Any] = {
            "users": users(),
            "sites": [site_with_contacts()],
            "roster": ROSTER,
            "escalation": ESCALATION,
            "watch": {"defaults": {"timezone": "UTC"}},
        }
        hub = await hub_factory(clock=clock, **(config | overrides))
        return Night(hub, clock, publish_batch)

    return start


FALL = {"dev": "radar-101", "event": "fall", "value": True}
SMOKE = {"dev": "smoke-101", "reading": "smoke", "value": True}


async def test_nobody_answers_so_each_step_reaches_further_then_the_last_repeats(
    night: Any,
) -> None:
    ward: Night = await night()
    alert_id = await ward.send(FALL)
    await ward.pass_time(11 * 60)

    assert await ward.reached(alert_id) == [
        ("escalate", 0, 0.0, ["carer-east"]),
        ("escalate", 1, 120.0, ["sister"]),
        ("escalate", 2, 300.0, ["Anna Jones"]),
        ("repeat", 2, 600.0, ["Anna Jones"]),
    ]
    record = await ward.record(alert_id)
    family = record["steps"][2]["attempts"]
    assert [(a["recipient_kind"], a["phone"], a["result"]) for a in family] == [
        ("contact", "+44 7700 900123", "delivered")
    ]
    # Staff are also told on the console; no console is open in this test, and that is recorded.
    console = [a for a in record["steps"][0]["attempts"] if a["channel"] == "console"]
    assert [(a["recipient"], a["result"], a["detail"]) for a in console] == [
        ("carer-east", "failed", "no console open")
    ]
    assert record["escalation_step"] == 3
    assert record["next"] == {"due_at": NIGHT_0300 + 900, "phase": "escalate", "n": 4}
    assert record["notified"] == ["Carer-East", "Sister", "Anna Jones"]
    history = [entry["action"] for entry in await ward.hub.store.audit.for_alert(alert_id)]
    assert history.count("escalation_step") == 4
    assert history.count("notification") == 4 + 2  # recording ×4, console ×2 (staff only)


async def test_acknowledged_at_step_two_goes_no_further(night: Any) -> None:
    ward: Night = await night()
    alert_id = await ward.send(FALL)
    await ward.pass_time(3 * 60)
    await ward.act(alert_id, "sister", "acknowledge")
    await ward.pass_time(15 * 60)

    assert await ward.reached(alert_id) == [
        ("escalate", 0, 0.0, ["carer-east"]),
        ("escalate", 1, 120.0, ["sister"]),
    ]
    assert "Anna Jones" not in ward.recorder.recipients()  # nor anyone else's family
    timer = ward.hub.timers.pending("escalate", str(alert_id))
    assert timer is not None and timer.payload == {"phase": "realert", "n": 0}


async def test_an_acknowledged_alert_left_unresolved_is_re_alerted_until_resolved(
    night: Any,
) -> None:
    ward: Night = await night()
    alert_id = await ward.send(FALL)
    await ward.pass_time(60)
    await ward.act(alert_id, "carer-east", "acknowledge")  # at 03:01
    await ward.pass_time(19 * 60)
    assert [r[0] for r in await ward.reached(alert_id)] == ["escalate"]
    await ward.pass_time(21 * 60)

    assert (await ward.reached(alert_id))[1:] == [
        ("realert", 0, 21 * 60.0, ["carer-east", "sister"]),
        ("realert", 1, 41 * 60.0, ["carer-east", "sister"]),
    ]
    assert ward.recorder.sent[-1].text.startswith("Reminder: still not resolved: fall")
    await ward.act(alert_id, "carer-east", "resolve")
    await ward.pass_time(60 * 60)
    assert len(await ward.reached(alert_id)) == 3
    assert ward.hub.timers.pending("escalate", str(alert_id)) is None


async def test_a_test_alert_is_never_escalated(night: Any) -> None:
    ward: Night = await night(
        watch={"defaults": {"timezone": "UTC"}, "zones": {"sunrise/east": {"maintenance": True}}}
    )
    alert_id = await ward.send(FALL)
    await ward.pass_time(30 * 60)
    alert = await ward.hub.alerts.records.get(alert_id)
    assert alert is not None and alert["test"] == 1
    assert ward.hub.escalation is not None
    assert (await ward.hub.escalation.history(alert_id))["steps"] == []
    assert [n for n in ward.recorder.sent if n.alert["id"] == alert_id] == []
    assert ward.hub.timers.pending("escalate", str(alert_id)) is None
    async with httpx.AsyncClient(base_url=ward.hub.url) as client:
        await login(client, "manager", PASSWORD)
        figures = (await client.get("/api/figures", params={"site": "sunrise"})).json()
    assert figures["figures"][0]["alerts"] == 0  # the test fall is not counted


async def test_smoke_tells_everyone_on_duty_at_once(night: Any) -> None:
    ward: Night = await night()
    alert_id = await ward.send(SMOKE)

    (first,) = await ward.reached(alert_id)
    assert first[:3] == ("escalate", 0, 0.0)
    assert sorted(first[3]) == ["carer-east", "carer-west", "sister"]
    record = await ward.record(alert_id)
    assert record["steps"][0]["targets"] == ["all_on_duty", "on_duty_zone"]


async def test_a_pending_step_fires_once_at_its_time_after_the_hub_is_killed(
    night: Any, hub_factory: HubFactory
) -> None:
    ward: Night = await night()
    alert_id = await ward.send(FALL)
    await ward.pass_time(60)
    await kill(ward.hub)

    restarted = Night(
        await hub_factory(
            clock=ward.clock,
            users=users(),
            sites=[site_with_contacts()],
            roster=ROSTER,
            escalation=ESCALATION,
            watch={"defaults": {"timezone": "UTC"}},
        ),
        ward.clock,
        ward._publish,
    )
    await restarted.pass_time(59)
    assert [r[:3] for r in await restarted.reached(alert_id)] == [("escalate", 0, 0.0)]
    await restarted.pass_time(1)
    await restarted.pass_time(3 * 60)

    assert await restarted.reached(alert_id) == [
        ("escalate", 0, 0.0, ["carer-east"]),  # told by the first hub
        ("escalate", 1, 120.0, ["sister"]),
        ("escalate", 2, 300.0, ["Anna Jones"]),
    ]
    told = [n.recipient.id for n in restarted.recorder.sent if n.alert["id"] == alert_id]
    assert told == ["sister", "Anna Jones"]


async def kill(hub: Hub) -> None:
    """Stop the hub's tasks and drop its database connection, without a clean shutdown."""
    for task in hub._tasks:
        task.cancel()
    await asyncio.gather(*hub._tasks, return_exceptions=True)
    await hub.store.close()
    hub._stop.set()  # the fixture's stop() has nothing left to do


async def test_a_crash_between_recording_a_step_and_moving_its_timer_repeats_nothing(
    night: Any, hub_factory: HubFactory
) -> None:
    ward: Night = await night()
    alert_id = await ward.send(FALL)
    await ward.pass_time(2 * 60)  # step 1 (charge nurse) recorded and delivered
    db = ward.hub.store.db
    # As if the hub died after the step's transaction: timer not yet moved, attempts undelivered.
    await db.execute(
        "UPDATE timers SET due_at = ?, payload = ? WHERE kind = 'escalate' AND key = ?",
        (NIGHT_0300 + 120, '{"phase": "escalate", "n": 1}', str(alert_id)),
    )
    await db.execute("UPDATE notifications SET result = 'pending' WHERE step = 1")
    await db.commit()
    await kill(ward.hub)

    restarted = Night(
        await hub_factory(
            clock=ward.clock,
            users=users(),
            sites=[site_with_contacts()],
            roster=ROSTER,
            escalation=ESCALATION,
            watch={"defaults": {"timezone": "UTC"}},
        ),
        ward.clock,
        ward._publish,
    )
    await restarted.settled()
    await restarted.pass_time(60)
    await restarted.until_steps(alert_id, 3)

    record = await restarted.record(alert_id)
    steps = escalated(record)
    assert [(s["n"], s["at"] - NIGHT_0300) for s in steps] == [(0, 0.0), (1, 120.0)]
    # The leftover attempts were delivered once, by the restarted hub (the recording
    # notifier it had before the crash is gone, so that channel now fails).
    assert [(a["channel"], a["result"], a["at"]) for a in steps[1]["attempts"]] == [
        ("console", "failed", NIGHT_0300 + 120),
        ("recording", "failed", NIGHT_0300 + 120),
    ]
    # Step 1 therefore reached nobody: that is an alarm of its own, raised once as the hub
    # started (before this test's recording notifier was added), not a repeat of the step.
    assert [s["phase"] for s in record["steps"]] == ["escalate", "escalate", "fallback"]
    assert [(e["step"], e["at"]) for e in record["nobody_reached"]] == [(2, NIGHT_0300 + 120)]
    assert [n for n in restarted.recorder.sent if n.alert["id"] == alert_id] == []
    timer = restarted.hub.timers.pending("escalate", str(alert_id))
    assert timer is not None and (timer.due_at, timer.payload["n"]) == (NIGHT_0300 + 300, 2)


async def test_a_nobody_reached_alarm_cut_off_by_a_crash_is_raised_when_the_hub_starts(
    night: Any, hub_factory: HubFactory
) -> None:
    ward: Night = await night(roster={"sites": {}})
    alert_id = await ward.send(FALL)
    await ward.until_steps(alert_id, 2)
    db = ward.hub.store.db
    # As if the hub died after step 0's delivery and before its alarm was recorded.
    await db.execute("DELETE FROM audit WHERE action = 'nobody_reached'")
    await db.execute("DELETE FROM notifications WHERE phase = 'fallback'")
    await db.execute("DELETE FROM escalation_steps WHERE phase = 'fallback'")
    await db.execute("UPDATE alerts SET nobody_reached_at = NULL")
    await db.commit()
    await kill(ward.hub)

    restarted = Night(
        await hub_factory(
            clock=ward.clock,
            users=users(),
            sites=[site_with_contacts()],
            roster={"sites": {}},
            escalation=ESCALATION,
            watch={"defaults": {"timezone": "UTC"}},
        ),
        ward.clock,
        ward._publish,
    )
    await restarted.until_steps(alert_id, 2)

    record = await restarted.record(alert_id)
    assert [(s["phase"], s["n"]) for s in record["steps"]] == [("escalate", 0), ("fallback", 0)]
    assert [(e["step"], e["reason"]) for e in record["nobody_reached"]] == [
        (1, "no one on duty in East wing")
    ]
    assert record["nobody_reached_at"] == NIGHT_0300
    assert restarted.hub.escalation is not None
    await restarted.hub.escalation.deliver_leftovers()  # once more: nothing is raised again
    assert len((await restarted.record(alert_id))["nobody_reached"]) == 1


# --- fallback channels: push first, Apprise when nobody answers ----------------------------------


def push_then_apprise(http: LoopbackHttp) -> dict[str, Any]:
    """Mary Jones's bed as a family bed: staff console and family push at once, the family's
    Apprise URLs after 3 minutes. Anna's webhook is up; Ben's service is down."""
    site = copy.deepcopy(SMALL_SITE)
    resident = site["zones"][0]["rooms"][0]["beds"][0]["resident"]
    resident["contacts"] = [
        {
            "name": "Anna Jones",
            "relation": "family",
            "user": "daughter",
            "notify": [f"json://127.0.0.1:{http.port}/anna"],
        },
        {
            "name": "Ben Jones",
            "relation": "family",
            "notify": [f"json://127.0.0.1:{closed_port()}/ben"],
        },
    ]
    steps = [
        {
            "after_min": 0,
            "notify": ["on_duty_zone", "family_contacts"],
            "channels": ["console", "push"],
        },
        {"after_min": 3, "notify": "family_contacts", "channels": ["apprise"]},
        {"after_min": 6, "notify": "charge_nurse"},
    ]
    return {
        "sites": [site],
        "escalation": {**ESCALATION, "residents": {"E-0001": {"steps": steps}}},
        "outbound": {"allowed_hosts": ["127.0.0.1"]},  # the services run on loopback
    }


def escalated(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of the policy's ladder (not help requests or nobody-reached fallbacks)."""
    return [step for step in record["steps"] if step["phase"] == "escalate"]


def attempts(record: dict[str, Any]) -> list[tuple[int, str, str | None, str, str]]:
    """(step, recipient, channel, result, detail) of every attempt of the ladder's steps."""
    return [
        (a["step"], a["recipient"], a["channel"], a["result"], a["detail"])
        for step in escalated(record)
        for a in step["attempts"]
    ]


NO_PUSH = "none of the channels this step allows (console, phone notification) reaches this person"


async def test_a_family_that_answers_the_push_in_time_is_never_sent_the_fallback(
    night: Any,
) -> None:
    with LoopbackHttp() as http:
        ward: Night = await night(**push_then_apprise(http))
        alert_id = await ward.send(FALL)
        await ward.until_steps(alert_id, 2)
        await ward.pass_time(2 * 60)
        await ward.act(alert_id, "carer-east", "acknowledge")
        await ward.pass_time(8 * 60)
        record = await ward.record(alert_id)

    # Nobody had a console open and the family had no push yet: step 0 reached nobody, so the
    # fallback people were told at once.
    assert [(s["phase"], s["step"]) for s in record["steps"]] == [
        ("escalate", 0),
        ("fallback", 0),
    ]
    assert record["nobody_reached"][0]["reason"].startswith(
        "Carer-East (console): no console open; "
    )
    assert attempts(record) == [
        (0, "carer-east", "console", "failed", "no console open"),
        (0, "Anna Jones", None, "no_channel", NO_PUSH),
        (0, "Ben Jones", None, "no_channel", NO_PUSH),
    ]
    assert http.received == []
    # A channel the step does not allow is not used.
    sent = [n for n in ward.recorder.sent if n.alert["id"] == alert_id]
    assert {n.phase for n in sent} == {"fallback"}


async def test_when_nobody_answers_the_apprise_fallback_fires_and_every_attempt_is_recorded(
    night: Any,
) -> None:
    with LoopbackHttp() as http:
        ward: Night = await night(**push_then_apprise(http))
        alert_id = await ward.send(FALL)
        await ward.until_steps(alert_id, 2)
        await ward.pass_time(2 * 60)
        assert http.received == []
        await ward.pass_time(60)
        record = await ward.record(alert_id)

    assert attempts(record)[3:] == [
        (1, "Anna Jones", "apprise", "delivered", "json ok"),
        (1, "Ben Jones", "apprise", "failed", "json failed"),
    ]
    (posted,) = http.received
    assert posted.path == "/anna"
    assert posted.json()["title"] == "EMERGENCY: fall · Mary Jones"
    assert escalated(record)[1]["at"] == NIGHT_0300 + 180
    # Which account reaches a person is kept with the attempt; the Apprise URLs (secrets) are not.
    fallback = escalated(record)[1]["attempts"]
    assert [a["recipient_user"] for a in fallback] == ["daughter", None]
    async with ward.hub.store.db.execute("SELECT * FROM notifications") as cur:
        stored = [dict(row) for row in await cur.fetchall()]
    assert not any("json://" in str(value) for row in stored for value in row.values())
    results = [
        (entry["channel"], entry["detail"]["recipient"], entry["detail"]["result"])
        for entry in await ward.hub.store.audit.for_alert(alert_id)
        if entry["action"] == "notification" and entry["channel"] == "apprise"
    ]
    assert results == [("apprise", "Anna Jones", "delivered"), ("apprise", "Ben Jones", "failed")]


def test_a_step_names_only_channels_the_hub_has() -> None:
    sms = [{"after_min": 0, "notify": "family_contacts", "channels": ["push", "sms"]}]
    with pytest.raises(ValueError) as unknown:
        EscalationConfig(residents={"E-0001": {"night": {"steps": sms}}})
    with pytest.raises(ValueError, match="list at least one channel"):
        Step(after_min=0, notify=("family_contacts",), channels=())

    assert "escalation.residents.E-0001 (night): " in str(unknown.value)
    assert "unknown channel 'sms'; use one of apprise, console, push" in str(unknown.value)
    one = Step.model_validate({"after_min": 0, "notify": "family_contacts", "channels": "push"})
    assert (one.channels, Step(after_min=0, notify=("family_contacts",)).channels) == (
        ("push",),
        None,
    )


# --- "Send someone" ------------------------------------------------------------------------------


async def test_a_family_request_for_help_tells_the_staff_on_duty_at_once(night: Any) -> None:
    ward: Night = await night()
    escalation = ward.hub.escalation
    assert isinstance(escalation, Escalation)
    alert_id = await ward.send(FALL)

    summary = await escalation.request_help(alert_id, "daughter", "push")
    await ward.pass_time(60)
    again = await escalation.request_help(alert_id, "daughter", "family_app")

    assert summary["help_requested_by"] == ["daughter"]
    assert again["help_requested_by"] == ["daughter"]
    assert await ward.reached(alert_id) == [
        ("escalate", 0, 0.0, ["carer-east"]),
        ("help", 0, 0.0, ["carer-east", "sister"]),
        ("help", 1, 60.0, ["carer-east", "sister"]),
    ]
    record = await ward.record(alert_id)
    assert record["steps"][1]["targets"] == ["on_duty_zone", "charge_nurse"]
    asked = [
        (entry["actor"], entry["channel"], entry["at"] - NIGHT_0300)
        for entry in await ward.hub.store.audit.for_alert(alert_id)
        if entry["action"] == "help_requested"
    ]
    assert asked == [("daughter", "push", 0.0), ("daughter", "family_app", 60.0)]
    alert = await ward.hub.alerts.records.get(alert_id)
    assert alert is not None and alert["state"] == "open"  # staff still acknowledge it


async def test_help_is_refused_for_a_resolved_or_unknown_alert(night: Any) -> None:
    ward: Night = await night()
    escalation = ward.hub.escalation
    assert isinstance(escalation, Escalation)
    alert_id = await ward.send(FALL)
    await ward.act(alert_id, "carer-east", "acknowledge")
    await ward.act(alert_id, "carer-east", "resolve")

    with pytest.raises(AlertError) as resolved:
        await escalation.request_help(alert_id, "daughter", "push")
    with pytest.raises(AlertError) as unknown:
        await escalation.request_help(alert_id + 100, "daughter", "push")

    assert (resolved.value.status, unknown.value.status) == (409, 404)
    assert [r[0] for r in await ward.reached(alert_id)] == ["escalate"]
    history = await ward.hub.store.audit.for_alert(alert_id)
    assert "help_requested" not in [entry["action"] for entry in history]


@pytest.mark.sqlite_only  # a SQLite file as an earlier main left it
async def test_a_database_from_before_push_and_apprise_still_opens(
    night: Any, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.executescript(OLD_NOTIFICATIONS)
    ward: Night = await night()
    alert_id = await ward.send(FALL)

    async with ward.hub.store.db.execute(
        "SELECT recipient, recipient_user FROM notifications WHERE alert_id = 900"
    ) as cur:
        assert [tuple(row) for row in await cur.fetchall()] == [("old-nurse", None)]
    record = await ward.record(alert_id)
    assert [(a["recipient"], a["recipient_user"]) for a in record["steps"][0]["attempts"]] == [
        ("carer-east", "carer-east"),
        ("carer-east", "carer-east"),
    ]


OLD_NOTIFICATIONS = """
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    step_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    phase TEXT NOT NULL,
    target TEXT NOT NULL,
    channel TEXT,
    recipient_kind TEXT,
    recipient TEXT,
    recipient_name TEXT,
    phone TEXT,
    email TEXT,
    at REAL NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
INSERT INTO notifications (alert_id, step_id, step, phase, target, channel, recipient_kind,
    recipient, recipient_name, at, result)
VALUES (900, 1, 0, 'escalate', 'on_duty_zone', 'console', 'user', 'old-nurse', 'Old Nurse', 0,
    'delivered');
"""


# --- nobody reached, and "I can't" ---------------------------------------------------------------


async def test_an_empty_roster_makes_each_step_an_alarm_for_the_fallback_people(
    night: Any,
) -> None:
    ward: Night = await night(roster={"sites": {}})
    alert_id = await ward.send(FALL)
    await ward.until_steps(alert_id, 2)  # step 0 and its fallback, before the clock moves
    await ward.pass_time(2 * 60)  # step 1: still no charge nurse on duty
    await ward.until_steps(alert_id, 4)
    record = await ward.record(alert_id)

    assert [(s["phase"], s["n"], s["at"] - NIGHT_0300) for s in record["steps"]] == [
        ("escalate", 0, 0.0),
        ("fallback", 0, 0.0),
        ("escalate", 1, 120.0),
        ("fallback", 1, 120.0),
    ]
    assert [(e["step"], e["phase"], e["reason"]) for e in record["nobody_reached"]] == [
        (1, "escalate", "no one on duty in East wing"),
        (2, "escalate", "no charge nurse on duty"),
    ]
    assert record["nobody_reached_at"] == NIGHT_0300
    fallback = record["steps"][1]
    assert fallback["targets"] == ["charge_nurse", "site_managers", "site_consoles"]
    # The site's supervisor is reached; no console is open, and that is recorded too.
    assert [(a["recipient"], a["channel"], a["result"]) for a in fallback["attempts"]] == [
        (None, None, "no_recipient"),
        ("manager", "console", "failed"),
        ("manager", "recording", "delivered"),
        ("site:sunrise", "console", "failed"),
    ]
    assert record["reached"] == [
        {
            "user": "manager",
            "name": "manager",
            "channel": "recording",
            "at": NIGHT_0300,
            "channel_name": "recording",
            "text": "manager (recording)",
        },
        {
            "user": "manager",
            "name": "manager",
            "channel": "recording",
            "at": NIGHT_0300 + 120,
            "channel_name": "recording",
            "text": "manager (recording)",
        },
    ]
    alert = await ward.hub.alerts.records.get(alert_id)
    assert alert is not None and alert["state"] == "open"  # still waits for a person


async def test_when_the_fallback_reaches_nobody_either_it_is_recorded_and_not_repeated(
    night: Any,
) -> None:
    ward: Night = await night(roster={"sites": {}})
    ward.recorder.fail_for.add("manager")
    alert_id = await ward.send(FALL)
    await ward.until_steps(alert_id, 2)
    record = await ward.record(alert_id)

    assert [(s["phase"], s["n"]) for s in record["steps"]] == [("escalate", 0), ("fallback", 0)]
    assert len(record["nobody_reached"]) == 1 and record["reached"] == []
    alert = await ward.hub.alerts.records.get(alert_id)
    assert alert is not None and alert["nobody_reached_at"] == NIGHT_0300


async def test_i_cannot_moves_the_ladder_at_once_and_leaves_the_decliner_out(night: Any) -> None:
    ward: Night = await night()
    escalation = ward.hub.escalation
    assert isinstance(escalation, Escalation)
    alert_id = await ward.send(FALL)
    await ward.pass_time(30)

    summary = await escalation.decline(alert_id, "carer-east", "push")
    await ward.settled()

    assert summary["declined_by"] == ["Carer-East"]
    assert await ward.reached(alert_id) == [
        ("escalate", 0, 0.0, ["carer-east"]),
        ("escalate", 1, 30.0, ["sister"]),
    ]
    timer = ward.hub.timers.pending("escalate", str(alert_id))
    assert timer is not None and (timer.due_at, timer.payload["n"]) == (NIGHT_0300 + 300, 2)
    declined = [
        e for e in await ward.hub.store.audit.for_alert(alert_id) if e["action"] == "declined"
    ]
    assert [(e["actor"], e["channel"], e["at"]) for e in declined] == [
        ("carer-east", "push", NIGHT_0300 + 30)
    ]
    await ward.act(alert_id, "sister", "acknowledge")
    with pytest.raises(AlertError) as late:
        await escalation.decline(alert_id, "carer-west", "push")
    assert late.value.status == 409


async def test_a_help_request_when_the_decliner_was_the_only_one_on_duty_reaches_the_charge_nurse(
    night: Any,
) -> None:
    ward: Night = await night()
    escalation = ward.hub.escalation
    assert isinstance(escalation, Escalation)
    alert_id = await ward.send(FALL)
    await escalation.decline(alert_id, "carer-east", "console")
    await escalation.request_help(alert_id, "daughter", "family_app")
    await ward.settled()

    help_step = [s for s in (await ward.record(alert_id))["steps"] if s["phase"] == "help"]
    attempts = [(a["target"], a["recipient"], a["result"]) for a in help_step[0]["attempts"]]
    assert ("on_duty_zone", None, "no_recipient") in attempts
    assert ("charge_nurse", "sister", "delivered") in attempts
    assert help_step[0]["attempts"][0]["detail"] == "everyone it would reach declined"


@pytest.mark.parametrize(("on_handling", "steps_go_on"), [("continue", True), ("pause", False)])
async def test_a_family_responder_handling_it_stops_their_reminders_and_the_policy_says_the_rest(
    night: Any, on_handling: str, steps_go_on: bool
) -> None:
    responder = {"family_responder": True, "on_family_handling": on_handling}
    escalation = {**ESCALATION, "residents": {"E-0001": responder}}
    ward: Night = await night(escalation=escalation)
    engine = ward.hub.escalation
    assert isinstance(engine, Escalation)
    alert_id = await ward.send(FALL)

    summary = await engine.family_handling(alert_id, "daughter", "family_app")
    await ward.pass_time(10 * 60)  # past the charge nurse's step and the family's

    assert summary["family_handling"]["by"] == "daughter"
    assert summary["console_quiet"] is not steps_go_on
    fired = [(s["phase"], s["step"], s["targets"]) for s in (await ward.record(alert_id))["steps"]]
    if steps_go_on:
        # Staff steps go on; the family's own step (family_contacts) is left out.
        assert fired[:3] == [
            ("escalate", 0, ["on_duty_zone"]),
            ("escalate", 1, ["charge_nurse"]),
            ("escalate", 2, []),
        ]
        assert "Anne Jones" not in ward.recorder.recipients()
    else:
        assert fired == [("escalate", 0, ["on_duty_zone"])]
    alert = await ward.hub.alerts.records.get(alert_id)
    assert alert is not None and alert["state"] == "open"  # staff still acknowledge it


async def test_a_care_home_bed_refuses_i_am_handling_it(night: Any) -> None:
    ward: Night = await night()
    engine = ward.hub.escalation
    assert isinstance(engine, Escalation)
    alert_id = await ward.send(FALL)
    with pytest.raises(AlertError) as refused:
        await engine.family_handling(alert_id, "daughter", "family_app")
    assert refused.value.status == 409
    assert "family_handling" not in {
        e["action"] for e in await ward.hub.store.audit.for_alert(alert_id)
    }
