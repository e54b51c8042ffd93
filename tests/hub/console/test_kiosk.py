"""The fixed console station (docs/console-station.md), tested as far as a headless run allows.

- The shipped systemd user unit passes `systemd-analyze --user verify` (where the machine has
  it) and both it and the XDG autostart entry parse; they start Chromium in kiosk mode with the
  same flags, the autoplay flag among them.
- A real headless Chromium launched with those flags, signed in and left alone (no tap, no key,
  no click on the page: a station whose browser restarted at night), becomes an armed console
  as the hub reports it in GET /api/consoles, and the hub's "No console is watching …" alarm
  resolves. The same browser without the autoplay flag stays behind its overlay, unarmed, and
  the alarm stands: what a supervisor sees of a station set up without it.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect

from hub.app import Hub
from hub.console.presence import RULE
from tests.conftest import NURSE, SUPERVISOR, HubFactory
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, assert_accessible
from tests.support.clock import FakeClock
from tests.support.hub import login
from tests.support.paths import REPO
from tests.support.waiting import eventually

KIOSK = REPO / "deploy" / "kiosk"
UNIT = KIOSK / "carewatch-console.service"
AUTOSTART = KIOSK / "carewatch-console.desktop"
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
ALL_DAY = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "all-day",
                    "start": "00:00",
                    "end": "00:00",
                    "assignments": [{"user": "nurse"}],
                }
            ]
        }
    }
}


def ini(path: Path) -> configparser.ConfigParser:
    """A unit or desktop file read as what both are: sections of keys, case kept."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def command(line: str) -> tuple[str, list[str], str]:
    """(program, flags, address) of a Chromium command line."""
    program, *flags, address = shlex.split(line)
    assert all(flag.startswith("--") for flag in flags), flags
    return program, flags, address


def kiosk_flags() -> list[str]:
    """The flags the unit starts Chromium with."""
    return command(ini(UNIT)["Service"]["ExecStart"])[1]


def test_the_unit_and_the_autostart_entry_start_chromium_kiosk_with_the_autoplay_flag(
    tmp_path: Path,
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # a user manager of its own: the test needs no session bus
        env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
        done = subprocess.run(
            [analyze, "--user", "verify", str(UNIT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, "")
    unit = ini(UNIT)
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Service"]["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "graphical-session.target"
    program, flags, address = command(unit["Service"]["ExecStart"])
    assert (program, address) == (CHROMIUM, "${CAREWATCH_URL}")
    assert {"--kiosk", AUTOPLAY} <= set(flags)

    entry = ini(AUTOSTART)["Desktop Entry"]
    assert (entry["Type"], entry["Terminal"], entry["X-GNOME-Autostart-enabled"]) == (
        "Application",
        "false",
        "true",
    )
    assert command(entry["Exec"]) == (CHROMIUM, flags, "http://127.0.0.1:8080/")


@asynccontextmanager
async def station(hub: Hub, flags: list[str]) -> AsyncIterator[Page]:
    """A console page in a headless Chromium with `flags`, signed in as the night nurse through
    the hub's login in the browser's own cookie jar: nothing on the page is ever touched."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *flags]
        )
        try:
            context = await browser.new_context(viewport={"width": 1920, "height": 1080})
            signed_in = await context.request.post(
                hub.url + "/api/login", data={"username": NURSE[0], "password": NURSE[1]}
            )
            assert signed_in.ok, await signed_in.text()
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(hub.url + "/")
            await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
            yield page
            assert errors == [], f"JavaScript errors in the console: {errors}"
        finally:
            await browser.close()


async def consoles(office: httpx.AsyncClient) -> dict[str, Any]:
    """GET /api/consoles as the supervisor signed in at `office` sees it."""
    answer = await office.get("/api/consoles")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def alarms(hub: Hub) -> list[str]:
    listed = await hub.alerts.records.page(("open", "acknowledged"), limit=None)
    return sorted(a["subject"] for a in listed if a["rule"] == RULE)


async def test_a_station_started_with_the_unit_flags_arms_itself_and_the_zone_alarm_clears(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(time.time())
    hub = await hub_factory(clock=clock, roster=ALL_DAY, watch={"defaults": {"timezone": "UTC"}})
    clock.advance(60)  # a minute of the shift with no console: both wings raise their alarm
    both = ["zone:sunrise/east", "zone:sunrise/west"]
    await eventually(lambda: _alarms_are(hub, both))
    flags = kiosk_flags()
    async with httpx.AsyncClient(base_url=hub.url) as office:  # the supervisor's view
        await login(office, SUPERVISOR)

        # Without the autoplay flag the page cannot sound: the overlay asks for a tap, the hub
        # counts a connected console that is not armed, and the alarm stands.
        async with station(hub, [f for f in flags if f != AUTOPLAY]) as page:
            await expect(page.get_by_test_id("arm-overlay")).to_be_visible()
            await eventually(lambda: _listed(office, armed=False))
            listed = await consoles(office)
            assert [z["watched_by"] for z in listed["zones"]] == [0, 0]
            assert await alarms(hub) == both
        await eventually(lambda: _listed(office, armed=None))  # the browser closed: no console

        # With the unit's flags: armed from the start, with no tap; the alarms clear themselves.
        async with station(hub, flags) as page:
            await eventually(lambda: _listed(office, armed=True))
            await expect(page.get_by_test_id("arm-overlay")).to_be_hidden()
            await eventually(lambda: _alarms_are(hub, []))
            (console,) = (await consoles(office))["consoles"]
            assert (console["user"], console["user_name"], console["sites"]) == (
                "nurse",
                "Night Nurse",
                ["sunrise"],
            )
            assert [z["zone_name"] for z in console["zones"]] == ["East wing", "West wing"]
            await assert_accessible(page, "console station, armed by the autoplay flag")

            # The browser reloads at night: the new page arms itself again, still untouched.
            await page.reload()
            first = console["console"]
            await eventually(lambda: _listed(office, armed=True, other_than=first))
            await expect(page.get_by_test_id("arm-overlay")).to_be_hidden()
    assert await alarms(hub) == []


async def _alarms_are(hub: Hub, subjects: list[str]) -> bool:
    return await alarms(hub) == subjects


async def _listed(
    office: httpx.AsyncClient, *, armed: bool | None, other_than: str | None = None
) -> bool:
    """One console of the nurse's listed, armed as said (None: no console at all)."""
    listed: list[dict[str, Any]] = (await consoles(office))["consoles"]
    if armed is None:
        return listed == []
    return [(c["user"], c["armed"]) for c in listed] == [("nurse", armed)] and all(
        c["console"] != other_than for c in listed
    )
