"""Pages that lose the hub, in Debian's Chromium on a real hub and Mosquitto: the family app and
the installer's page, open on two phones, show their banner when the hub cannot be reached;
reloaded then, their service workers' cached shells show the last known alerts and walk test,
saying plainly that new ones are not reaching the screen, with buttons that say they cannot
work now; when the hub answers again they are live again; and they show their banner when the
hub stops. Every offline state passes axe-core. The staff console's own offline start, through
the same /staff-sw.js, is tested in tests/hub/console/test_alarm_panel.py."""

from __future__ import annotations

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import FAMILY, HubFactory, PublishBatch
from tests.hub.commissioning.test_installer_browser import log_in as installer_log_in
from tests.hub.commissioning.test_walktest import Gateway
from tests.hub.family.test_browser import PHONE, family_hub
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, assert_accessible
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import eventually

NOT_REACHING = "new alerts are not reaching this screen"
WALKTEST_NOT_REACHING = "new walk-test results are not reaching this screen"
# The banner shows after the page's next look at the hub (every few seconds), not at once.
NOTICED_MS = 15_000


async def phone_page(browser: Browser, base: str, path: str, errors: list[str]) -> Page:
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, timezone_id="Europe/London"
    )
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{path}: {exc}"))
    await page.goto(base + path)
    return page


async def worker_ready(page: Page) -> str:
    """The page's service worker is active (its shell is cached for a start without the hub);
    its scope."""
    scope = await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active && r.scope)")
    assert isinstance(scope, str)
    return scope


CACHED = """async () => {
  const paths = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
  }
  return paths;
}"""


async def test_the_family_app_and_installer_page_without_the_hub(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await family_hub(hub_factory)
    gateway = Gateway(publish_batch)
    errors: list[str] = []
    async with (
        # the phones reach the hub through a link the test can break
        TcpProxy("127.0.0.1", hub.web_port) as link,
        async_playwright() as playwright,
    ):
        base = f"http://127.0.0.1:{link.port}"
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            family = await phone_page(browser, base, "/family", errors)
            installer = await phone_page(browser, base, "/installer", errors)

            # Mary Jones has fallen; her daughter's app shows it.
            await gateway.send("radar-101", "fall")

            async def fallen() -> bool:
                return len(await hub.alerts.records.page(("open",), 10)) == 1

            await eventually(fallen)
            await family.get_by_test_id("login-username").fill(FAMILY[0])
            await family.get_by_test_id("login-password").fill(FAMILY[1])
            await family.get_by_test_id("login-submit").click()
            alert = family.get_by_test_id("active-alert")
            await expect(alert.get_by_test_id("active-alert-rule")).to_have_text("Fall")
            await expect(alert.get_by_test_id("seen-button")).to_be_enabled()
            assert await worker_ready(family) == f"{base}/family"

            # The installer walks the home; the call button has passed.
            await installer_log_in(installer)
            await installer.get_by_test_id("start").click()
            button = installer.locator('[data-testid="device-row"][data-device="button-101"]')
            await expect(button).to_have_attribute("data-passed", "false")  # it has started
            await gateway.send("button-101", "call_button", "press")
            await expect(button).to_have_attribute("data-passed", "true")
            assert await worker_ready(installer) == f"{base}/"  # /staff-sw.js

            # The link to the hub breaks.
            await link.pause()
            link.cut()
            family_banner = family.get_by_test_id("offline-banner")
            installer_banner = installer.get_by_test_id("offline-banner")
            await expect(installer_banner).to_contain_text(WALKTEST_NOT_REACHING)
            await expect(installer.get_by_test_id("stop")).to_be_disabled()
            await expect(installer.get_by_test_id("offline-note")).to_be_visible()
            await expect(family_banner).to_contain_text(NOT_REACHING, timeout=NOTICED_MS)
            await expect(alert.get_by_test_id("seen-button")).to_be_disabled()
            await expect(alert.get_by_test_id("alert-offline")).to_have_text(
                "Not available while the care service cannot be reached. "
                "If it is urgent, call them."
            )

            # Opened again meanwhile: what each phone last knew, and why.
            await family.reload()
            await expect(family_banner).to_contain_text(NOT_REACHING)
            await expect(family_banner).to_contain_text("Shown: what was known at")
            await expect(alert.get_by_test_id("active-alert-rule")).to_have_text("Fall")
            await expect(family.get_by_test_id("resident-name")).to_have_text("Mary Jones")
            await expect(alert.get_by_test_id("seen-button")).to_be_disabled()
            await expect(alert.get_by_test_id("alert-offline")).to_be_visible()
            await expect(family.get_by_test_id("care-service-call")).to_be_visible()
            await expect(family.get_by_test_id("push-panel")).to_be_hidden()  # needs the hub
            await assert_accessible(family, "family app, reloaded without the hub")

            await installer.reload()
            await expect(installer_banner).to_contain_text(WALKTEST_NOT_REACHING)
            await expect(installer.get_by_test_id("state")).to_contain_text("running")
            await expect(installer.get_by_test_id("scope")).to_have_text("Sunrise Care Home")
            await expect(button).to_have_attribute("data-passed", "true")
            progress = installer.get_by_test_id("progress")
            await expect(progress).to_have_text("1 of 5 devices passed")
            await expect(installer.get_by_test_id("stop")).to_be_disabled()
            await expect(installer.get_by_test_id("offline-note")).to_be_visible()
            await assert_accessible(installer, "installer page, reloaded without the hub")
            # the workers keep the pages' shells, never an answer of the API
            cached = await installer.evaluate(CACHED)
            assert {"/installer", "/installer/installer.js", "/static/console.js"} <= set(cached)
            assert not [path for path in cached if path.startswith("/api/")]

            # The hub answers again: both are live again by themselves.
            await link.resume()
            await expect(installer_banner).to_be_hidden(timeout=NOTICED_MS)
            await expect(installer.get_by_test_id("stop")).to_be_enabled()
            await gateway.send("radar-102", "presence", kind="reading")
            radar = installer.locator('[data-testid="device-row"][data-device="radar-102"]')
            await expect(radar).to_have_attribute("data-passed", "true")
            await expect(progress).to_have_text("2 of 5 devices passed")
            await expect(family_banner).to_be_hidden(timeout=NOTICED_MS)
            await expect(alert.get_by_test_id("seen-button")).to_be_enabled()
            await expect(alert.get_by_test_id("alert-offline")).to_have_count(0)

            # The hub itself stops.
            await hub.stop()
            await expect(installer_banner).to_contain_text(WALKTEST_NOT_REACHING)
            await expect(family_banner).to_contain_text(NOT_REACHING, timeout=NOTICED_MS)
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors: {errors}"
