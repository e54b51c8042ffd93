"""Fall frame written to a radar's serial port → the staff phone's push → its service worker.

Real parts throughout, as in benchmarks/fall_to_console.py: MR60FDA1 simulators behind
pseudo-terminals, `carewatch edge` agents in their own processes (20 radars each), a real
Mosquitto, the hub with SQLite, and optionally background telemetry from a separate process.
On top of that, the path to a nurse's phone:

- the roster puts one staff member (`nurse`) on duty for the whole day in the beds' zone, and
  the escalation's first step is `on_duty_zone` at 0 minutes (the second, the charge nurse at 3
  minutes, never comes due: each alert is closed long before);
- the nurse signs in and subscribes through the hub's own API (`POST /api/push/subscriptions`),
  as a phone does, with an endpoint at a real Web Push service on loopback
  (tests/support/webpush_receiver.py: checks VAPID, decrypts aes128gcm). It runs in a thread with
  its own event loop, so it answers however busy the hub's loop is, as a push service
  elsewhere would;
- the decrypted message is handed to the app's service worker in headless Chromium
  (/usr/bin/chromium) through DevTools (`ServiceWorker.deliverPushMessage`), as the browser's
  push service would hand it to a phone's browser.

Falls are written one at a time, each to a different bed. Timed from os.write() of the frame:

1. the push received and decrypted at the local push service;
2. the notification shown by the service worker (its message to the open app, sent once
   `showNotification` resolved; stamped in the page);
3. when the service worker confirms receipts (action `received`, hub/notify/routes.py): the hub's
   record of the receipt (the subscription's `confirmed_at`).

Between falls, the alert is acknowledged with the push's action token ("I'm going", as the
phone's button does) and resolved, so that no later step of an earlier alert is pending; a
push that is not the first of a fall being timed is counted as "other".

Not measured: the leg from a real push service (FCM, APNs, Mozilla) to a real phone. None is
reachable here; the DevTools hand-over stands in for it.

    python benchmarks/fall_to_phone.py --falls 200
    python benchmarks/fall_to_phone.py --falls 200 --background-beds 10000 --warmup 5

Prints p50/p90/p99/max in milliseconds for each leg, and the counts. Figures, not assertions:
the machine is shared. Exits with status 1 if a push, a notification or a receipt is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from playwright.async_api import CDPSession, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fall_to_console import (
    FALL,
    PASSWORD,
    SITE,
    registry,
    start_background,
    start_edges,
    wait_connected,
)
from benchmarks.watch_common import percentile
from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.mosquitto import mosquitto
from tests.support.webpush_receiver import Delivered, PushReceiver, PushServiceThread

NURSE: Final = "nurse"
CHARGE_NURSE: Final = "charge"
ZONE: Final = "all"  # benchmarks/fall_to_console.py's registry: every bed in one zone
WAIT_S: Final = 15.0  # for each push, notification and receipt before it counts as missing
POLL_S: Final = 0.005  # how often the page is asked whether the worker showed the push
RECEIPT_POLL_S: Final = 0.01  # how often the hub is asked whether the receipt arrived

Push = tuple[float, Delivered]  # (time.time() when the push service accepted it, the push)

# Installed once in the app's page: the moment the service worker tells the app about a push,
# which it does once `showNotification` has resolved (hub/web/sw.js `showAlert`).
LISTEN: Final = """() => {
  window.benchShown = {};
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "push" && !(data.alert_id in window.benchShown)) {
      window.benchShown[data.alert_id] = Date.now(); // the wall clock, as time.time()
    }
  });
}"""
SHOWN_AT: Final = "(id) => window.benchShown[id] || null"
CLEAR: Final = """async () => {
  const registration = await navigator.serviceWorker.ready;
  for (const shown of await registration.getNotifications()) shown.close();
}"""


def hub_config(host: str, port: int, database: Path, falls: int, beds: int) -> HubConfig:
    password_hash = hash_password(PASSWORD)
    return HubConfig.model_validate(
        {
            "broker": {"host": host, "port": port, "client_id": "bench-hub"},
            "database": str(database),
            # Every receipt and button press comes from 127.0.0.1: two a fall, far above the
            # per-address limit of the routes without a session (60 a minute).
            "web": {
                "port": 0,
                "secret_key": "b" * 40,
                "limits": {"requests_per_minute": 100_000, "public_requests_per_minute": 100_000},
            },
            "users": [
                {
                    "username": username,
                    "password_hash": password_hash,
                    "role": "staff",
                    "sites": [SITE],
                }
                for username in (NURSE, CHARGE_NURSE)
            ],
            "sites": [registry(falls, beds)],
            "roster": {
                "sites": {
                    SITE: {
                        "shifts": [
                            {
                                "name": "all day",
                                "start": "00:00",
                                "end": "00:00",  # ends at its start: the whole day
                                "charge_nurse": CHARGE_NURSE,
                                "assignments": [{"user": NURSE, "zones": [ZONE]}],
                            }
                        ]
                    }
                }
            },
            "escalation": {
                "defaults": {
                    "steps": [
                        {"after_min": 0, "notify": "on_duty_zone"},
                        {"after_min": 3, "notify": "charge_nurse"},
                    ]
                }
            },
            "push": {"subject": "mailto:bench@example.org", "allowed_hosts": ["127.0.0.1"]},
            "outbound": {"allowed_hosts": ["127.0.0.1"]},  # the push service, on loopback
        }
    )


# --------------------------------------------------------------------- the local push service


# --------------------------------------------------------------------- the nurse's phone


@dataclass
class StaffPhone:
    """The nurse, signed in, with a push subscription at the local push service."""

    hub: Hub
    client: httpx.AsyncClient
    csrf: str
    endpoint: str
    pushes: asyncio.Queue[Push]
    other_pushes: list[Delivered] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def signed_in(
        cls, hub: Hub, receiver: PushReceiver, pushes: asyncio.Queue[Push]
    ) -> AsyncIterator[StaffPhone]:
        async with httpx.AsyncClient(base_url=hub.url, timeout=60) as client:
            login = await client.post("/api/login", json={"username": NURSE, "password": PASSWORD})
            login.raise_for_status()
            csrf = str(login.json()["csrf_token"])
            (await client.get("/api/push/key")).raise_for_status()  # applicationServerKey
            _, _, subscription = receiver.new_subscription()
            stored = await client.post(
                "/api/push/subscriptions", json=subscription, headers={"X-CSRF-Token": csrf}
            )
            if stored.status_code != 201:
                raise SystemExit(f"the hub refused the push subscription: {stored.text}")
            yield cls(hub, client, csrf, subscription["endpoint"], pushes)

    async def push_for(self, bed: str, deadline: float) -> Push | None:
        """The next push for a fall of `bed`; any other push meanwhile is counted as other."""
        while (left := deadline - time.time()) > 0:
            try:
                stamp, delivered = await asyncio.wait_for(self.pushes.get(), left)
            except TimeoutError:
                return None
            if delivered.message.get("bed") == bed and delivered.message.get("rule") == "fall":
                return stamp, delivered
            self.other_pushes.append(delivered)
        return None

    def drain(self) -> None:
        while not self.pushes.empty():
            self.other_pushes.append(self.pushes.get_nowait()[1])

    async def receipt_after(self, written: float, deadline: float) -> float | None:
        """When the hub recorded the service worker's receipt of a push sent after `written`
        (the subscription's `confirmed_at`, as its owner sees it)."""
        while time.time() < deadline:
            listed = await self.client.get("/api/push/subscriptions")
            for subscription in listed.json()["subscriptions"]:
                confirmed = subscription.get("confirmed_at")
                if subscription["endpoint"] == self.endpoint and confirmed and confirmed > written:
                    return float(confirmed)
            await asyncio.sleep(RECEIPT_POLL_S)
        return None

    async def close_alert(self, alert_id: int, token: str) -> None:
        """ "I'm going" with the push's own token, as the notification's button does; then
        resolved, so that none of the alert's later steps is left to fire."""
        ack = await self.client.post(
            "/api/push/action", json={"token": token, "action": "acknowledge"}
        )
        if ack.status_code != 200:
            print(f"acknowledging alert {alert_id}: {ack.status_code} {ack.text}", file=sys.stderr)
        resolved = await self.client.post(
            f"/api/alerts/{alert_id}/resolve",
            json={"outcome": "false_alarm", "note": "benchmark"},
            headers={"X-CSRF-Token": self.csrf},
        )
        if resolved.status_code != 200:
            print(f"resolving alert {alert_id}: {resolved.text}", file=sys.stderr)


# --------------------------------------------------------------------- the app in Chromium


@dataclass
class ServiceWorker:
    """The app's service worker in headless Chromium, and the open app it tells of pushes."""

    origin: str
    page: Page
    cdp: CDPSession
    registration: str
    errors: list[str]

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, hub: Hub) -> AsyncIterator[ServiceWorker]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context()
                await context.grant_permissions(["notifications"], origin=hub.url)
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(hub.url + "/family")  # registers the app's service worker
                await page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
                await page.evaluate(LISTEN)
                cdp = await context.new_cdp_session(page)
                registration = await registration_id(cdp, hub.url)
                yield cls(hub.url, page, cdp, registration, errors)
            finally:
                await browser.close()

    async def shown_at(self, message: dict[str, Any], deadline: float) -> float | None:
        """Hand the push to the worker; when (time.time()) it had shown the notification."""
        await self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": self.origin,
                "registrationId": self.registration,
                "data": json.dumps(message),
            },
        )
        while time.time() < deadline:
            shown = await self.page.evaluate(SHOWN_AT, message["alert_id"])
            if shown is not None:
                return float(shown) / 1000
            await asyncio.sleep(POLL_S)
        return None

    async def clear(self) -> None:
        await self.page.evaluate(CLEAR)


async def registration_id(cdp: CDPSession, origin: str) -> str:
    """The id of the service worker registration of the hub's origin (DevTools)."""
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def registrations(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"].startswith(origin) and not registration["isDeleted"]:
                if not found.done():
                    found.set_result(str(registration["registrationId"]))

    cdp.on("ServiceWorker.workerRegistrationUpdated", registrations)
    await cdp.send("ServiceWorker.enable")
    return await asyncio.wait_for(found, 10)


# --------------------------------------------------------------------- the measurement


@dataclass
class Result:
    falls: int
    background_beds: int
    pushed: list[float] = field(default_factory=list)  # ms, frame → push service
    shown: list[float] = field(default_factory=list)  # ms, frame → notification shown
    handed: list[float] = field(default_factory=list)  # ms, push service → notification shown
    receipts: list[float] = field(default_factory=list)  # ms, frame → receipt at the hub
    browser: bool = True
    receipts_sent: bool = False  # whether this service worker confirms receipts
    other_pushes: int = 0
    javascript_errors: list[str] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return (
            len(self.pushed) == self.falls
            and (not self.browser or len(self.shown) == self.falls)
            and (not (self.browser and self.receipts_sent) or len(self.receipts) == self.falls)
        )


async def run(args: argparse.Namespace) -> Result:
    loop = asyncio.get_running_loop()
    pushes: asyncio.Queue[Push] = asyncio.Queue()

    def on_push(stamp: float, delivered: Delivered) -> None:  # in the push service's thread
        loop.call_soon_threadsafe(pushes.put_nowait, (stamp, delivered))

    result = Result(args.falls, args.background_beds, browser=args.browser)
    with (
        tempfile.TemporaryDirectory(prefix="carewatch-bench-") as tmp,
        PushServiceThread(on_push) as receiver,
        mosquitto() as broker,
    ):
        workdir = Path(tmp)
        config = hub_config(
            broker.host, broker.port, workdir / "hub.db", args.falls, args.background_beds
        )
        hub = await Hub.start(config)
        radars = [MR60FDA1Simulator() for _ in range(args.falls)]
        edges = start_edges(radars, broker.host, broker.port, workdir)
        background = (
            [
                start_background(
                    args.background_beds, args.reading_interval, False, broker.host, broker.port
                )
            ]
            if args.background_beds
            else []
        )
        try:
            await wait_connected(hub, len(edges))
            async with contextlib.AsyncExitStack() as stack:
                phone = await stack.enter_async_context(StaffPhone.signed_in(hub, receiver, pushes))
                worker = (
                    await stack.enter_async_context(ServiceWorker.running(hub))
                    if args.browser
                    else None
                )
                sw = (await phone.client.get("/sw.js")).text
                result.receipts_sent = '"received"' in sw or "'received'" in sw
                await asyncio.sleep(args.warmup)
                await measure(radars, phone, worker, result, args.gap)
                await asyncio.sleep(1.0)  # a late push of an alert already closed is counted
                phone.drain()
                result.other_pushes = len(phone.other_pushes)
                result.javascript_errors = list(worker.errors) if worker else []
            assert hub.push is not None
            result.counters = {"ingest": hub.ingest.counters(), "push": hub.push.counters()}
        finally:
            for process in [*edges, *background]:
                process.terminate()
            for process in [*edges, *background]:
                process.wait(10)
            for radar in radars:
                radar.close()
            await hub.stop()
    return result


async def measure(
    radars: Sequence[MR60FDA1Simulator],
    phone: StaffPhone,
    worker: ServiceWorker | None,
    result: Result,
    gap: float,
) -> None:
    for i, radar in enumerate(radars):
        bed = f"B-{i:05d}"
        written = time.time()
        radar.send(FALL)
        push = await phone.push_for(bed, written + WAIT_S)
        if push is None:
            print(f"no push for the fall of {bed} within {WAIT_S:.0f} s", file=sys.stderr)
            continue
        received, delivered = push
        result.pushed.append((received - written) * 1000)
        alert_id = int(delivered.message["alert_id"])
        if worker is not None:
            shown = await worker.shown_at(delivered.message, time.time() + WAIT_S)
            if shown is None:
                print(f"no notification shown for alert {alert_id}", file=sys.stderr)
            else:
                result.shown.append((shown - written) * 1000)
                result.handed.append((shown - received) * 1000)
            if result.receipts_sent:
                confirmed = await phone.receipt_after(written, time.time() + WAIT_S)
                if confirmed is None:
                    print(f"no receipt at the hub for alert {alert_id}", file=sys.stderr)
                else:
                    result.receipts.append((confirmed - written) * 1000)
        await phone.close_alert(alert_id, str(delivered.message["action_token"]))
        if worker is not None:
            await worker.clear()
        await asyncio.sleep(gap)


def figures(latencies: Sequence[float]) -> str:
    if not latencies:
        return "no figures"
    ordered = sorted(latencies)
    return (
        f"p50 {percentile(ordered, 50):7.1f} ms   p90 {percentile(ordered, 90):7.1f} ms   "
        f"p99 {percentile(ordered, 99):7.1f} ms   max {ordered[-1]:7.1f} ms   "
        f"mean {statistics.fmean(ordered):7.1f} ms"
    )


def report(result: Result) -> str:
    n = result.falls
    lines = [
        f"fall frame → staff phone (Web Push), {n} falls written, "
        f"background beds: {result.background_beds}",
        f"  pushes received: {len(result.pushed)}/{n} (missing {n - len(result.pushed)}); "
        f"other pushes: {result.other_pushes}",
        "  frame → push received and decrypted at the local push service\n    "
        + figures(result.pushed),
    ]
    if result.browser:
        lines += [
            f"  shown by the service worker: {len(result.shown)}/{n} "
            f"(missing {n - len(result.shown)})",
            "  frame → notification shown by the app's service worker (headless Chromium)\n    "
            + figures(result.shown),
            "  of which push service → shown (DevTools hand-over and the worker)\n    "
            + figures(result.handed),
        ]
        if result.receipts_sent:
            lines += [
                f"  receipts at the hub: {len(result.receipts)}/{n} "
                f"(missing {n - len(result.receipts)})",
                "  frame → the worker's receipt recorded by the hub\n    "
                + figures(result.receipts),
            ]
        else:
            lines.append("  receipts: this service worker (hub/web/sw.js) sends none")
        if result.javascript_errors:
            lines.append(f"  JavaScript errors: {result.javascript_errors}")
    lines += [
        f"  hub ingest counters: {result.counters.get('ingest')}",
        f"  hub push counters: {result.counters.get('push')}",
        "  not measured: a real push service (FCM, APNs, Mozilla) to a real phone",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--falls", type=int, default=200)
    parser.add_argument("--background-beds", type=int, default=0)
    parser.add_argument(
        "--reading-interval",
        type=float,
        default=5.0,
        help="seconds between readings per background bed (default 5)",
    )
    parser.add_argument("--gap", type=float, default=0.02, help="pause between falls, s")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="stop at the push service: no Chromium, no service worker",
    )
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(run(parser.parse_args()))
    print(report(result))
    if not result.complete or result.javascript_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
