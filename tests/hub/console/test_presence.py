"""Consoles connected and armed, and the unwatched-zone alarm, through a real hub and Mosquitto.

The hub's clock is a manual clock: the grace of a zone nobody watches and the shift changes
come when the test moves it, and the durable timers of `hub/console/presence.py` fire then. The
consoles are live streams opened over the hub's real HTTP port, as a console page opens them.

Sunrise's day shift (07:00–19:00) covers every zone; its family beds at home ("homes") are
listed as unstaffed. Harbour House has no roster. Neither is ever an alarm.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from hub.alerts.lifecycle import ACTIVE_STATES
from hub.app import Hub
from hub.console.presence import GRACE, RULE, SHIFT
from tests.conftest import (
    EAST_NURSE,
    FAMILY,
    NURSE,
    SUPERVISOR,
    HubFactory,
)
from tests.hub.escalation.test_roster_view import sunrise
from tests.support.clock import FakeClock
from tests.support.hub import login
from tests.support.waiting import eventually

MORNING = datetime(2026, 11, 23, 6, 58, tzinfo=ZoneInfo("UTC")).timestamp()  # a Monday
SHIFT_START = MORNING + 120  # 07:00
GRACE_S = 60.0
WEST, EAST = "zone:sunrise/west", "zone:sunrise/east"
ROSTER = {
    "sites": {
        "sunrise": {
            "unstaffed_zones": ["homes"],
            "shifts": [
                {
                    "name": "day",
                    "start": "07:00",
                    "end": "19:00",
                    "assignments": [{"user": "nurse"}, {"user": "east-nurse", "zones": ["east"]}],
                }
            ],
        }
    }
}
HARBOUR: dict[str, Any] = {
    "id": "harbour",
    "name": "Harbour House",
    "gateways": ["gw-h"],
    "zones": [{"id": "north", "name": "North wing", "rooms": []}],
}


async def start(hub_factory: HubFactory, clock: FakeClock) -> Hub:
    return await hub_factory(
        clock=clock,
        sites=[sunrise(), HARBOUR],
        roster=ROSTER,
        watch={"defaults": {"timezone": "UTC"}},
    )


async def unwatched(hub: Hub, states: tuple[str, ...] = ACTIVE_STATES) -> dict[str, int]:
    """The zone_unwatched alerts: subject → id."""
    listed = await hub.alerts.records.page(states, limit=None)
    return {a["subject"]: a["id"] for a in listed if a["rule"] == RULE}


def grace_due(hub: Hub, zone: str) -> float | None:
    timer = hub.timers.pending(GRACE, f"sunrise/{zone}")
    return None if timer is None else timer.due_at


@dataclass
class Station:
    """A signed-in console with its live stream open."""

    client: httpx.AsyncClient
    csrf: str
    console: str

    async def arm(self, armed: bool, console: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/api/consoles/armed",
            json={"console": console or self.console, "armed": armed},
            headers={"X-CSRF-Token": self.csrf},
        )


@contextlib.asynccontextmanager
async def station(
    hub: Hub, who: tuple[str, str], console: str, armed: bool
) -> AsyncIterator[Station]:
    """A console page of `who`: its stream is open (the hub said hello) until the block ends."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        csrf = await login(client, who)
        params = {"console": console, "armed": str(int(armed))}
        async with client.stream("GET", "/api/stream", params=params) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()  # held while the console is open: its end closes it
            async for line in lines:
                if line.startswith("event: hello"):
                    break
            yield Station(client, csrf, console)


async def consoles_seen_by(hub: Hub, who: tuple[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, who)
        return await client.get("/api/consoles")


async def test_a_staffed_zone_no_armed_console_watches_is_an_alarm_until_one_does(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(MORNING)
    hub = await start(hub_factory, clock)
    # 06:58: no shift is running, so no zone is staffed: no grace, no alarm.
    assert (grace_due(hub, "east"), grace_due(hub, "west"), await unwatched(hub)) == (
        None,
        None,
        {},
    )
    shift = hub.timers.pending(SHIFT, "sunrise")
    assert shift is not None and shift.due_at == SHIFT_START

    clock.advance(120)  # 07:00: the day shift starts; the wings are staffed, the homes are not
    await eventually(lambda: grace_due(hub, "west") == grace_due(hub, "east") == SHIFT_START + 60)
    assert grace_due(hub, "homes") is None
    assert hub.timers.pending(GRACE, "harbour/north") is None  # no roster, never staffed

    clock.advance(GRACE_S - 1)  # not yet: the timers are due a second from now
    assert grace_due(hub, "west") == grace_due(hub, "east") == clock.now() + 1
    assert await unwatched(hub) == {}
    clock.advance(1)  # the grace is over: both wings raise their alarm
    await eventually(lambda: _count(hub, 2))
    alarms = await unwatched(hub)
    assert set(alarms) == {EAST, WEST}
    west = await hub.alerts.records.get(alarms[WEST])
    assert west is not None
    assert (west["priority"], west["state"], west["site"], west["zone_name"]) == (
        "trouble",
        "open",
        "sunrise",
        "West wing",
    )
    (opened,) = [e for e in await hub.store.audit.for_alert(west["id"]) if e["action"] == "opened"]
    assert opened["detail"]["why"] == "No console is watching West wing"
    assert opened["detail"]["unwatched_since"] == SHIFT_START
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, SUPERVISOR)
        shown = (await client.get(f"/api/alerts/{west['id']}")).json()
        assert shown["place"]["headline"] == "West wing"

        async def escalated() -> bool:  # like any other alert: the escalation takes it on
            steps = (await client.get(f"/api/alerts/{west['id']}/escalation")).json()["steps"]
            return bool(steps)

        await eventually(escalated)

    # The east wing's nurse arms her console: the east wing is watched, the west is not hers.
    async with station(hub, EAST_NURSE, "east-console-0001", armed=True) as east:
        await eventually(lambda: _resolved(hub, alarms[EAST]))
        assert set(await unwatched(hub)) == {WEST}

        # The night nurse's console is open but cannot sound yet: it watches nothing.
        async with station(hub, NURSE, "ward-console-0001", armed=False) as ward:
            listed = (await consoles_seen_by(hub, SUPERVISOR)).json()
            assert [(c["user"], c["armed"]) for c in listed["consoles"]] == [
                ("east-nurse", True),
                ("nurse", False),
            ]
            assert _watched_by(listed) == {"east": 1, "west": 0, "homes": 0}
            assert set(await unwatched(hub)) == {WEST}

            # Tapped: armed. The west wing is watched and its alarm clears by itself.
            assert (await ward.arm(True)).status_code == 204
            await eventually(lambda: _resolved(hub, alarms[WEST]))
            listed = (await consoles_seen_by(hub, SUPERVISOR)).json()
            assert _watched_by(listed) == {"east": 2, "west": 1, "homes": 1}
            # A console of another session, or none at all, is not this session's.
            assert (await east.arm(True, console="ward-console-0001")).status_code == 404
            assert (await ward.arm(True, console="no-such-console")).status_code == 404
            assert (await ward.arm(True, console="bad id!")).status_code == 422

        # Her console closed: the west wing's grace starts again, from now.
        await eventually(lambda: grace_due(hub, "west") == clock.now() + GRACE_S)
        clock.advance(GRACE_S)
        await eventually(lambda: _count(hub, 1))
        again = await unwatched(hub)
        assert set(again) == {WEST} and again[WEST] != alarms[WEST]

        # 19:00: the shift ends, nobody is meant to be there: the alarm clears, no grace runs.
        clock.advance(SHIFT_START + 12 * 3600 - clock.now())
        await eventually(lambda: _resolved(hub, again[WEST]))
        assert (grace_due(hub, "east"), grace_due(hub, "west")) == (None, None)
    assert await unwatched(hub) == {}
    everything = await unwatched(hub, ("open", "acknowledged", "resolved"))
    assert not {s for s in everything if not s.startswith("zone:sunrise/") or "homes" in s}


async def test_who_sees_which_consoles_and_what_a_console_may_send(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(SHIFT_START + 3600)
    hub = await start(hub_factory, clock)
    async with (
        station(hub, EAST_NURSE, "east-console-0001", armed=True),
        station(hub, NURSE, "ward-console-0001", armed=False),
    ):
        # The east wing's nurse sees her own console and her own wing only.
        mine = (await consoles_seen_by(hub, EAST_NURSE)).json()
        assert mine == {
            "consoles": [
                {
                    "console": "east-console-0001",
                    "user": "east-nurse",
                    "user_name": "east-nurse",
                    "armed": True,
                    "since": SHIFT_START + 3600,
                    "sites": ["sunrise"],
                    "zones": [{"site": "sunrise", "zone": "east", "zone_name": "East wing"}],
                }
            ],
            "zones": [
                {
                    "site": "sunrise",
                    "zone": "east",
                    "zone_name": "East wing",
                    "staffed": True,
                    "watched_by": 1,
                }
            ],
        }
        # The supervisor of Sunrise sees both consoles, and of each only what is Sunrise's.
        theirs = (await consoles_seen_by(hub, SUPERVISOR)).json()
        (ward,) = [c for c in theirs["consoles"] if c["user"] == "nurse"]
        assert (ward["user_name"], ward["armed"], ward["sites"]) == (
            "Night Nurse",
            False,
            ["sunrise"],
        )
        assert [z["zone"] for z in ward["zones"]] == ["east", "homes", "west"]
        assert [(z["zone"], z["staffed"]) for z in theirs["zones"]] == [
            ("east", True),
            ("homes", False),
            ("west", True),
        ]
        # The night nurse sees every site: Harbour House has no roster, so nothing is staffed.
        everywhere = (await consoles_seen_by(hub, NURSE)).json()
        assert [c["user"] for c in everywhere["consoles"]] == ["nurse"]
        assert ("harbour", "north", False) in {
            (z["site"], z["zone"], z["staffed"]) for z in everywhere["zones"]
        }
        assert (await consoles_seen_by(hub, FAMILY)).status_code == 403

    async with httpx.AsyncClient(base_url=hub.url) as client:
        csrf = await login(client, NURSE)
        for bad in ("short", "has a space", "x" * 65, "semi;colon-1234"):
            answer = await client.get("/api/stream", params={"console": bad})
            assert answer.status_code == 422, bad
        unknown = await client.post(
            "/api/consoles/armed",
            json={"console": "never-connected-1", "armed": True},
            headers={"X-CSRF-Token": csrf},
        )
        assert unknown.status_code == 404
        forged = await client.post(
            "/api/consoles/armed", json={"console": "never-connected-1", "armed": True}
        )
        assert forged.status_code == 403  # no CSRF token


async def test_a_hub_restart_gives_every_staffed_zone_its_grace_again_and_keeps_its_alarms(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(SHIFT_START + 3600)
    first = await start(hub_factory, clock)
    assert grace_due(first, "west") == SHIFT_START + 3600 + GRACE_S
    clock.advance(GRACE_S)
    await eventually(lambda: _count(first, 2))
    alarms = await unwatched(first)
    async with station(first, EAST_NURSE, "east-console-0001", armed=True):
        await eventually(lambda: _resolved(first, alarms[EAST]))
    await eventually(lambda: grace_due(first, "east") is not None)
    await first.stop()

    clock.advance(10 * GRACE_S)  # the hub was down for ten minutes
    second = await start(hub_factory, clock)
    # The west wing's alarm is still the one alarm; the east wing gets a full grace to reconnect.
    assert await unwatched(second) == {WEST: alarms[WEST]}
    assert (grace_due(second, "east"), grace_due(second, "west")) == (clock.now() + GRACE_S, None)
    async with station(second, NURSE, "ward-console-0001", armed=True):
        await eventually(lambda: _resolved(second, alarms[WEST]))
        await eventually(lambda: grace_due(second, "east") is None)


async def _count(hub: Hub, n: int) -> bool:
    return len(await unwatched(hub)) == n


async def _resolved(hub: Hub, alert_id: int) -> bool:
    alert = await hub.alerts.records.get(alert_id)
    assert alert is not None
    return bool(alert["state"] == "resolved" and alert["outcome"] == "self_cleared")


def _watched_by(listed: dict[str, Any]) -> dict[str, int]:
    return {z["zone"]: z["watched_by"] for z in listed["zones"] if z["site"] == "sunrise"}
