"""Make the pictures in docs/screenshots from the pages as they are now.

    scripts/screenshots                  # writes docs/screenshots/*.png
    scripts/screenshots --out /tmp/shots --only console family

Each picture is taken of a real hub on loopback (its own database in a temporary folder) with a
real Mosquitto, in Debian's headless Chromium, after the same scene the browser tests set up:
the small site of tests/conftest.py, fed through the broker as its gateways would. The scenes
are built with the tests' own helpers (tests/support/, the browser tests of tests/hub/,
tests/hub/supervisor/test_supervisor.py), so this runs from a checkout with the dev extra
installed, and needs /usr/sbin/mosquitto and /usr/bin/chromium as the tests do.

Times on the console, resident page, family app and installer's page are the real clock's, so
those pictures differ from run to run in their clock times only; the supervisor view's night is
on a fixed date. The tests themselves write no pictures (tests write only to temporary
folders); tests/cli/test_screenshots.py runs this script into a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
from PIL import Image
from playwright.async_api import (
    Browser,
    Page,
    Playwright,
    ViewportSize,
    async_playwright,
    expect,
)

from contract.wire import data_topic
from hub.app import Hub
from hub.core.clock import Clock
from tests.conftest import FAMILY, INSTALLER, NURSE, SUPERVISOR, hub_config
from tests.hub.commissioning.test_walktest import Gateway
from tests.hub.console.test_browser import Console, a_day_of_readings
from tests.hub.family.test_browser import (
    CARE_SERVICE_PHONE,
    family_hub,
    phone_browser,
    pushed_to_daughter,
    subscribe_for,
)
from tests.hub.supervisor.test_supervisor import start_record
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.webpush_receiver import PushReceiver

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "screenshots"
CONSOLE_VIEWPORT: ViewportSize = {"width": 1180, "height": 820}


class Stage:
    """What one scene runs on: a Mosquitto of its own, and the hubs it starts on it."""

    def __init__(self, broker: MosquittoBroker, workdir: Path, out: Path) -> None:
        self.broker = broker
        self.workdir = workdir
        self.out = out
        self._hubs: list[Hub] = []

    async def start_hub(self, clock: Clock | None = None, **overrides: Any) -> Hub:
        """A hub as the tests' `hub_factory` starts it, with a fresh database."""
        database = self.workdir / f"hub-{len(self._hubs)}.db"
        hub = await Hub.start(hub_config(self.broker, database, **overrides), clock)
        self._hubs.append(hub)
        await asyncio.wait_for(hub.mqtt.connected.wait(), 10)
        return hub

    async def stop_hubs(self) -> None:
        while self._hubs:
            await self._hubs.pop().stop()

    async def publish_batch(
        self,
        site: str,
        gateway: str,
        items: list[dict[str, Any]],
        seq: int,
        epoch: str = "0123abcd",
        bdseq: int = 1,
    ) -> None:
        """One batch from a gateway, as the tests' `publish_batch` sends it."""
        body = {"epoch": epoch, "seq": seq, "bdseq": bdseq, "sent": time.time(), "items": items}
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.publish(data_topic(site, gateway), json.dumps(body), qos=1)

    async def shoot(self, page: Page, name: str, **options: Any) -> Path:
        path = self.out / f"{name}.png"
        await page.screenshot(path=str(path), **options)
        return path


@contextlib.asynccontextmanager
async def chromium(playwright: Playwright) -> AsyncIterator[Browser]:
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        await browser.close()


@contextlib.asynccontextmanager
async def watched(page: Page, what: str) -> AsyncIterator[Page]:
    """The page, and an error at the end if its JavaScript failed: no picture of a broken page."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    if errors:
        raise RuntimeError(f"JavaScript errors in the {what}: {errors}")


@contextlib.asynccontextmanager
async def console_page(stage: Stage, hub: Hub) -> AsyncIterator[Console]:
    """The console at 1180×820 in London time, signed in as the night nurse."""
    async with async_playwright() as playwright, chromium(playwright) as browser:
        context = await browser.new_context(viewport=CONSOLE_VIEWPORT, timezone_id="Europe/London")
        async with watched(await context.new_page(), "console") as page:
            await page.goto(hub.url + "/")
            yield Console(hub, page, stage.publish_batch)


async def console_scene(stage: Stage) -> list[Path]:
    """An open fall above an acknowledged call, a false smoke alarm resolved, the bed board
    (tests/hub/console/test_browser.py)."""
    hub = await stage.start_hub()
    async with console_page(stage, hub) as console:
        page = console.page
        await sign_in(page)
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live")

        # Earlier in the night: a smoke alarm in room 101, a false alarm.
        await console.send("smoke-101", "smoke", kind="reading")
        smoke = console.card("Room 101", "Smoke alarm")
        await smoke.get_by_test_id("resolve-button").click()
        await smoke.get_by_test_id("resolve-outcome").select_option("false_alarm")
        await smoke.get_by_test_id("resolve-note").fill("Burnt toast in the kitchenette.")
        await smoke.get_by_test_id("resolve-submit").click()
        await expect(smoke).to_have_count(0)
        await expect(page.get_by_test_id("resolved-item")).to_have_count(1)

        await console.send("button-101", "call_button")
        call = console.card("SR-E-101", "Call button")
        await call.get_by_test_id("acknowledge-button").click()
        await expect(call).to_have_attribute("data-state", "acknowledged")

        await console.send("radar-102", "fall")
        fall = console.card("SR-E-102", "Fall")
        await expect(fall).to_have_attribute("data-state", "open")
        await expect(page.get_by_test_id("alert-card")).to_have_count(2)
        await expect(fall.get_by_test_id("alert-escalation-step")).to_be_visible()

        # The board: Mary in bed for 40 minutes, Li Wei up since 5, the west bed empty.
        now = time.time()
        await console.send_items(
            [
                {"dev": "radar-101", "at": now - 2400, "reading": "presence", "value": True},
                {"dev": "radar-102", "at": now - 3000, "reading": "presence", "value": True},
                {"dev": "radar-102", "at": now - 300, "reading": "presence", "value": False},
            ]
        )
        await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "alert")
        await expect(console.tile("SR-E-102")).to_have_attribute("data-state", "alert")
        await expect(console.tile("SR-W-201")).to_have_attribute("data-state", "empty")
        await call.get_by_test_id("resolve-button").click()
        await call.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
        await call.get_by_test_id("resolve-submit").click()
        await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "in_bed")
        await expect(console.tile("SR-E-101").get_by_test_id("tile-since")).to_have_text(
            "for 40 min"
        )
        # Nobody is on duty in this small site: the fall reached nobody, and the console says so.
        await expect(page.get_by_test_id("nobody-banner")).to_be_visible()
        await page.evaluate("window.scrollTo(0, 0)")  # the clicks above scrolled the queue
        return [await stage.shoot(page, "console", animations="disabled")]


async def resident_scene(stage: Stage) -> list[Path]:
    """Mary Jones's page: her last 24 hours and a call button answered
    (tests/hub/console/test_browser.py)."""
    hub = await stage.start_hub()
    async with console_page(stage, hub) as console:
        page = console.page
        items = a_day_of_readings(time.time())
        for start in range(0, len(items), 500):
            await console.send_items(items[start : start + 500])
        await sign_in(page)
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        await console.send("button-101", "call_button")
        call = console.card("SR-E-101", "Call button")
        await call.get_by_test_id("acknowledge-button").click()
        await call.get_by_test_id("resolve-button").click()
        await call.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
        await call.get_by_test_id("resolve-note").fill("Wanted a glass of water.")
        await call.get_by_test_id("resolve-submit").click()
        await expect(call).to_have_count(0)

        await console.tile("SR-E-101").get_by_test_id("tile-link").click()
        await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")
        await expect(page.get_by_test_id("chart-heart")).not_to_have_attribute("data-points", "0")
        await expect(page.get_by_test_id("timeline-entry").first).to_be_visible()
        return [await stage.shoot(page, "resident", full_page=True, animations="disabled")]


async def family_scene(stage: Stage) -> list[Path]:
    """The daughter's phone: Mary in bed, a fall a nurse acknowledged and she has seen, a call
    button for which nobody could be reached (tests/hub/family/test_browser.py)."""
    async with PushReceiver() as receiver:
        hub = await family_hub(stage.start_hub)
        async with phone_browser(hub, receiver, stage.publish_batch) as phone:
            page = phone.page
            await phone.send({"dev": "radar-101", "reading": "occupancy", "value": True})
            await phone.send({"dev": "radar-102", "reading": "occupancy", "value": False})
            await phone.log_in()
            card = page.get_by_test_id("resident-card")
            await expect(card.get_by_test_id("resident-state")).to_have_text("In bed")

            # Her phone (a subscription at the local push service) is told of each alert.
            await subscribe_for(phone, FAMILY)
            fall = await phone.open_alert({"dev": "radar-101", "event": "fall", "value": True})
            await pushed_to_daughter(phone, fall)
            await page.reload()
            active = page.locator(f'[data-testid="active-alert"][data-alert-id="{fall}"]')
            await active.get_by_test_id("seen-button").click()
            await expect(active.get_by_test_id("family-answers")).to_have_text("Seen by Anne Jones")
            async with phone.session(NURSE) as (client, csrf):
                acked = await client.post(
                    f"/api/alerts/{fall}/acknowledge", headers={"X-CSRF-Token": csrf}
                )
                acked.raise_for_status()

            call = await phone.open_alert(
                {"dev": "button-101", "event": "call_button", "value": True}
            )
            await pushed_to_daughter(phone, call)
            await page.reload()
            response = active.get_by_test_id("staff-response")
            await expect(response).to_have_attribute("data-kind", "acknowledged")
            called = page.locator(f'[data-testid="active-alert"][data-alert-id="{call}"]')
            await called.get_by_test_id("send-someone-button").click()
            await expect(called.get_by_test_id("staff-response-text")).to_have_text(
                f"We could not reach anyone. Call the care service now: {CARE_SERVICE_PHONE}"
            )
            await expect(page.get_by_test_id("recent-alert")).to_have_count(2)
            await page.evaluate("window.scrollTo(0, 0)")
            return [await stage.shoot(page, "family", full_page=False)]


async def supervisor_scene(stage: Stage) -> list[Path]:
    """A night at Sunrise on a fixed date: figures, overdue alerts, alerts that reached nobody,
    device trouble (tests/hub/supervisor/: test_supervisor.py, test_browser.py)."""
    async with (
        start_record(stage.start_hub, stage.publish_batch, stage.broker) as record,
        async_playwright() as playwright,
        chromium(playwright) as browser,
    ):
        context = await browser.new_context(
            viewport={"width": 1280, "height": 1500}, timezone_id="UTC"
        )
        async with watched(await context.new_page(), "supervisor view") as page:
            await page.goto(record.hub.url + "/supervisor")
            await sign_in(page, SUPERVISOR)
            await expect(page.get_by_test_id("figure-row")).to_have_count(5)
            await expect(page.get_by_test_id("overdue-item")).to_have_count(2)
            await expect(page.get_by_test_id("nobody-count")).to_have_text("2")
            await expect(page.get_by_test_id("gateways-offline")).to_contain_text("gw-west")
            return [await stage.shoot(page, "supervisor", full_page=True)]


async def installer_scene(stage: Stage) -> list[Path]:
    """The installer's page for bed SR-E-101 on a phone during a walk test, the call button
    just passed (tests/hub/commissioning/test_walktest.py)."""
    hub = await stage.start_hub()
    gateway = Gateway(stage.publish_batch)
    async with async_playwright() as playwright, chromium(playwright) as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        async with watched(page, "installer's page"):
            await page.goto(f"{hub.url}/installer#bed=SR-E-101")
            await page.get_by_test_id("login-user").fill(INSTALLER[0])
            await page.get_by_test_id("login-password").fill(INSTALLER[1])
            await page.get_by_test_id("login-submit").click()
            await expect(page.get_by_test_id("bed-filter")).to_contain_text("SR-E-101")
            await page.get_by_test_id("start").click()
            rows = page.get_by_test_id("device-row")
            await expect(rows).to_have_count(3)
            button = rows.filter(has_text="button-101")
            await gateway.send("button-101", "call_button", "press")
            await expect(button).to_have_attribute("data-passed", "true")
            await gateway.send("button-101", "battery", 87, kind="reading")
            await gateway.send("button-101", "rssi", -58, kind="reading")
            await expect(button).to_contain_text("-58 dBm")
            await expect(button).to_contain_text("87 %")
            await expect(page.get_by_test_id("progress")).to_contain_text("1 of 3")
            shot = await stage.shoot(page, "installer", full_page=True)
            await page.get_by_test_id("stop").click()  # two devices not passed: it asks first
            await page.get_by_test_id("stop-confirm-yes").click()
            await expect(page.get_by_test_id("state")).to_contain_text("ended")
            return [shot]


Scene = Callable[[Stage], Awaitable[list[Path]]]
SCENES: dict[str, Scene] = {
    "console": console_scene,
    "resident": resident_scene,
    "family": family_scene,
    "supervisor": supervisor_scene,
    "installer": installer_scene,
}


async def make(out: Path, names: list[str]) -> list[Path]:
    written: list[Path] = []
    for name in names:
        # A broker per scene, as each test has: the hubs share a client id and a gateway's
        # sequence numbers, which one scene's broker session would carry into the next.
        with (
            tempfile.TemporaryDirectory(prefix="carewatch-screenshots-") as workdir,
            mosquitto() as broker,
        ):
            stage = Stage(broker, Path(workdir), out)
            try:
                for path in await SCENES[name](stage):
                    with Image.open(path) as image:
                        width, height = image.size
                    print(f"wrote {display(path)} ({width}×{height})", flush=True)
                    written.append(path)
            finally:
                await stage.stop_hubs()
    return written


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/screenshots",
        description="Take the pictures in docs/screenshots of a real hub in headless Chromium.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder to write the PNG files to (default: docs/screenshots)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SCENES),
        metavar="NAME",
        help=f"only these pictures, of: {', '.join(SCENES)}",
    )
    args = parser.parse_args(argv)
    # The hubs' own log lines (alerts opened, nobody reached) belong to the scenes, not here.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # Nobody is on duty in the scenes' small site: every "NOBODY REACHED" there is meant.
    logging.getLogger("carewatch.hub.escalation").setLevel(logging.CRITICAL)
    names: list[str] = args.only or list(SCENES)
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(make(args.out, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
