"""`carewatch provision` end to end, against a real Mosquitto using the files it writes.

The site is provisioned through the CLI (in a subprocess, as an installer runs it). Mosquitto is
then started with the generated password file and ACL (plain TCP); the hub runs on the
provisioned database; the east gateway's agent runs with the bundle's edge.yaml (only its
outbox moved to a temporary directory) and its radar's fall reaches the hub. The west
gateway's credentials cannot publish under the east gateway's topic.
"""

from __future__ import annotations

import asyncio
import io
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import segno
import yaml
from PIL import Image

from carewatch.cli import main as carewatch
from contract.wire import Observation, data_topic, encode_batch
from edge.agent import EdgeAgent
from edge.config import OutboxConfig, load_config
from hub.app import Hub
from hub.commissioning.provisioning import put_acl_block
from hub.config import load_hub_config
from hub.core.clock import SystemClock
from hub.core.store import Store
from hub.registry.labels import installer_url, qr_png, site_labels, site_pdf
from hub.registry.service import RegistryService
from hub.watch.coverage import PolicyCoverage
from hub.watch.settings import WatchConfig, WatchPolicy
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.conftest import INSTALLER, HubFactory
from tests.support.hub import login
from tests.support.mosquitto import free_port, mosquitto
from tests.support.waiting import eventually

HUB_PASSWORD = "hub-Secret-1"
BUTTON_MAC = "B4:35:22:F5:3D:A4"
BUTTON_KEY = "90bffd73cb6b26ef58a7a8eba9232036"


def hub_yaml(directory: Path, port: int) -> Path:
    config = {
        "database": str(directory / "hub.db"),
        "web": {"host": "127.0.0.1", "port": 0, "secret_key": "test-secret-" + "k" * 32},
        "broker": {
            "host": "127.0.0.1",
            "port": port,
            "username": "carewatch-hub",
            "password": HUB_PASSWORD,
            "client_id": "carewatch-hub-test",
        },
        "provisioning": {
            "password_file": str(directory / "mosquitto" / "carewatch.passwd"),
            "acl_file": str(directory / "mosquitto" / "carewatch.acl"),
            "public_url": "https://hub.example",
        },
    }
    path = directory / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def provision(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`carewatch provision --config CONFIG ARGS…` in its own process, as an installer runs it."""
    command = [sys.executable, "-m", "carewatch.cli", "provision", "--config", str(config)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def provision_ok(config: Path, *args: str) -> str:
    done = provision(config, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command in this process; it must refuse (exit 1). Returns what it printed."""
    capsys.readouterr()
    assert carewatch(["provision", "--config", str(config), *args]) == 1
    return capsys.readouterr().err


def provision_site(config: Path) -> None:
    for args in (
        ("site", "sunrise", "Sunrise Care Home"),
        ("zone", "sunrise", "east", "--name", "East wing"),
        ("room", "sunrise", "r101", "--zone", "east", "--name", "101"),
        ("room", "sunrise", "r102", "--zone", "east", "--name", "102"),
        ("bed", "sunrise", "r101", "SR-E-101"),
        ("bed", "sunrise", "r102", "SR-E-102"),
    ):
        provision_ok(config, *args)


@pytest.fixture
async def radar() -> AsyncIterator[MR60FDA1Simulator]:
    simulator = MR60FDA1Simulator()
    yield simulator
    simulator.close()


def fall(device: str) -> dict[str, object]:
    return Observation(device, time.time(), "event", "fall", True).to_wire()


async def bed_alerts(hub: Hub, bed: str, within: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        found = [a for a in await hub.alerts.records.page(("open",), 100) if a["bed"] == bed]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_provisioned_site_works_end_to_end_with_the_generated_broker_files(
    tmp_path: Path, radar: MR60FDA1Simulator
) -> None:
    port = free_port()
    config_path = hub_yaml(tmp_path, port)
    provision_site(config_path)
    east, west = tmp_path / "bundle-east", tmp_path / "bundle-west"
    out = provision_ok(config_path, "gateway", "sunrise", "gw-east", "--out", str(east))
    assert "bundle written to" in out
    provision_ok(config_path, "gateway", "sunrise", "gw-west", "--out", str(west))
    provision_ok(
        config_path, "device", "sunrise", "gw-east", "radar-101", "--profile", "seeed-mr60fda1",
        "--port", radar.port, "--bed", "SR-E-101", "--out", str(east),
    )  # fmt: skip
    provision_ok(
        config_path, "device", "sunrise", "gw-west", "button-102", "--profile",
        "shelly-blu-button1", "--mac", BUTTON_MAC.lower(), "--key", BUTTON_KEY,
        "--bed", "SR-E-102", "--out", str(west),
    )  # fmt: skip

    edge_yaml = east / "edge.yaml"
    assert stat.S_IMODE(edge_yaml.stat().st_mode) == 0o600
    bundle = load_config(edge_yaml)
    assert (bundle.site, bundle.gateway, bundle.broker.username) == (
        "sunrise",
        "gw-east",
        "sunrise/gw-east",
    )
    assert bundle.broker.password is not None and len(bundle.broker.password) >= 32
    assert [d.id for d in bundle.devices] == ["radar-101"]
    west_bundle = load_config(west / "edge.yaml")
    assert west_bundle.devices[0].address == BUTTON_MAC
    assert west_bundle.broker.password != bundle.broker.password
    assert "sudo systemctl reload mosquitto" in (east / "README.txt").read_text()

    settings = load_hub_config(config_path).provisioning
    # the hub's own user: the installer adds it once with mosquitto_passwd (docs/provisioning.md)
    hub_user = ["-b", str(settings.password_file), "carewatch-hub", HUB_PASSWORD]
    await asyncio.to_thread(subprocess.run, ["mosquitto_passwd", *hub_user], check=True)
    with mosquitto(
        port=port,
        password_file=settings.password_file,
        acl_file=settings.acl_file,
        extra_config="log_type all\n",
    ) as broker:
        hub = await Hub.start(load_hub_config(config_path))
        try:
            await asyncio.wait_for(hub.mqtt.connected.wait(), 10)
            await _east_fall_reaches_the_hub(hub, bundle, tmp_path, radar)
            await _west_cannot_publish_as_east(hub, broker.host, broker.port, west_bundle)
            denied = [line for line in broker.log().splitlines() if "Denied PUBLISH" in line]
            assert any("carewatch/v1/sunrise/gw-east/data" in line for line in denied), denied
        finally:
            await hub.stop()


async def _east_fall_reaches_the_hub(
    hub: Hub, bundle: Any, tmp_path: Path, radar: MR60FDA1Simulator
) -> None:
    config = bundle.model_copy(update={"outbox": OutboxConfig(path=tmp_path / "outbox.db")})
    agent = EdgeAgent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
        await eventually(lambda: agent.publisher.connected)
        radar.send("present")
        radar.send("fall")
        (alert,) = await bed_alerts(hub, "SR-E-101")
        assert (alert["rule"], alert["device"]) == ("fall", "radar-101")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def _west_cannot_publish_as_east(hub: Hub, host: str, port: int, west: Any) -> None:
    user, password = west.broker.username, west.broker.password
    async with aiomqtt.Client(host, port, username=user, password=password, identifier="w") as c:
        forged = encode_batch("0badf00d", 1, 1, time.time(), [fall("radar-101")])
        await c.publish(data_topic("sunrise", "gw-east"), forged, qos=1)
        # control: the same credentials on their own topic do reach the hub
        own = encode_batch("600dcafe", 1, 1, time.time(), [fall("button-102")])
        await c.publish(data_topic("sunrise", "gw-west"), own, qos=1)
    (alert,) = await bed_alerts(hub, "SR-E-102")
    assert alert["device"] == "button-102"
    await asyncio.sleep(0.3)
    assert (
        await hub.ingest.records.count_rows("events") == 2
    )  # the east fall and west's own; no forgery


# --- validation: each refusal says what to do ------------------------------------------------


@pytest.fixture
def site_config(tmp_path: Path) -> Path:
    config = hub_yaml(tmp_path, 1883)
    for args in (
        ("site", "sunrise", "Sunrise Care Home"),
        ("zone", "sunrise", "east"),
        ("room", "sunrise", "r101", "--zone", "east"),
        ("bed", "sunrise", "r101", "SR-E-101"),
        ("gateway", "sunrise", "gw-east", "--out", str(tmp_path / "east")),
        ("device", "sunrise", "gw-east", "radar-101", "--profile", "seeed-mr60fda1",
         "--port", "/dev/serial/by-id/usb-radar-101", "--bed", "SR-E-101"),
        ("device", "sunrise", "gw-east", "button-101", "--profile", "shelly-blu-button1",
         "--mac", BUTTON_MAC, "--key", BUTTON_KEY, "--bed", "SR-E-101"),
    ):  # fmt: skip
        assert carewatch(["provision", "--config", str(config), *args]) == 0, args
    return config


DEVICE = ("device", "sunrise", "gw-east")
PORT = ("--port", "/dev/serial/by-id/usb-new")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("radar-9", "--profile", "seeed-mr60fdaX", *PORT, "--bed", "SR-E-101"),
            "unknown device profile 'seeed-mr60fdaX'; available: bthome-smoke,",
        ),
        (
            ("radar-101", "--profile", "hlk-ld2410", *PORT, "--room", "r101"),
            "device id 'radar-101' is already registered",
        ),
        (
            ("button-9", "--profile", "shelly-blu-motion", "--mac", BUTTON_MAC, "--room", "r101"),
            "MAC B4:35:22:F5:3D:A4 is already device 'button-101'",
        ),
        (
            ("radar-9", "--profile", "seeed-mr60fda1", *PORT, "--bed", "SR-E-101"),
            "bed SR-E-101 already has a seeed-mr60fda1 (radar-101)",
        ),
        (
            ("radar-9", "--profile", "hlk-ld2410", *PORT, "--bed", "SR-X-999"),
            "no bed with code 'SR-X-999'",
        ),
        (
            (
                "button-9",
                "--profile",
                "shelly-blu-button1",
                "--mac",
                "B4:35:22:F5:3D:A5",
                "--key",
                BUTTON_KEY[:30],
                "--room",
                "r101",
            ),
            "BTHome key must be 32 hex characters, got 30",
        ),
        (
            ("radar-9", "--profile", "hlk-ld2410", "--mac", "B4:35:22:F5:3D:A5", "--room", "r101"),
            "profile hlk-ld2410 connects over serial: give --port, not --mac",
        ),
        (
            ("button-9", "--profile", "shelly-blu-button1", *PORT, "--room", "r101"),
            "profile shelly-blu-button1 connects over BLE: give --mac, not --port",
        ),
        (
            ("button-9", "--profile", "shelly-blu-button1", "--mac", "B4:35:22", "--room", "r101"),
            "BLE address must look like B4:35:22:F5:3D:A4, got 'B4:35:22'",
        ),
    ],
)
def test_a_bad_device_is_refused_with_a_reason(
    site_config: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert message in refused(site_config, capsys, *DEVICE, *args)


def test_reprovisioning_a_gateway_replaces_its_password_and_acl_block(
    site_config: Path, tmp_path: Path
) -> None:
    settings = load_hub_config(site_config).provisioning
    first = load_config(tmp_path / "east" / "edge.yaml").broker.password
    assert carewatch(["provision", "--config", str(site_config), "gateway", "sunrise", "gw-east",
                      "--out", str(tmp_path / "east")]) == 0  # fmt: skip
    again = load_config(tmp_path / "east" / "edge.yaml")
    assert again.broker.password != first
    assert [d.id for d in again.devices] == ["radar-101", "button-101"]
    acl = settings.acl_file.read_text()
    assert acl.count("user sunrise/gw-east\n") == 1
    assert acl.count("user carewatch-hub\n") == 1
    users = [line.split(":")[0] for line in settings.password_file.read_text().splitlines()]
    assert users == ["sunrise/gw-east"]


def test_put_acl_block_keeps_other_blocks(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    put_acl_block(acl, "a", "# >>> carewatch provision: a\nuser a\n# <<< carewatch provision: a\n")
    put_acl_block(acl, "b", "# >>> carewatch provision: b\nuser b\n# <<< carewatch provision: b\n")
    put_acl_block(acl, "a", "# >>> carewatch provision: a\nuser A\n# <<< carewatch provision: a\n")
    assert "user A" in acl.read_text() and "user b" in acl.read_text()
    assert "user a\n" not in acl.read_text()


# --- bulk import -------------------------------------------------------------------------------

BEDS_CSV = """site,zone,room,bed,room_name
sunrise,east,r110,SR-E-110,110
sunrise,east,r111,SR-E-111,111
"""

DEVICES_CSV = """id,site,gateway,profile,bed,room
radar-110,sunrise,gw-wing,seeed-mr60fda1,SR-E-110,
radar-111,sunrise,gw-wing,seeed-mr60fda1,SR-E-111,
"""

BAD_DEVICES_CSV = """id,site,gateway,profile,bed,room
radar-110,sunrise,gw-wing,seeed-mr60fda1,SR-E-110,
radar-112,sunrise,gw-wing,seeed-nothing,SR-E-110,
radar-113,sunrise,gw-wing,seeed-mr60fda1,SR-E-999,
"""


def test_a_wing_is_imported_and_its_new_gateway_gets_credentials(
    site_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beds, devices = tmp_path / "beds.csv", tmp_path / "devices.csv"
    beds.write_text(BEDS_CSV)
    devices.write_text(DEVICES_CSV)
    base = ["provision", "--config", str(site_config), "import"]
    assert carewatch([*base, str(beds)]) == 0
    assert carewatch([*base, str(devices), "--out", str(tmp_path / "bundles")]) == 0
    printed = capsys.readouterr().out
    assert "gateway sunrise/gw-wing: bundle written to" in printed
    bundle = tmp_path / "bundles" / "sunrise-gw-wing"
    assert load_config(bundle / "edge.yaml").broker.username == "sunrise/gw-wing"
    # the CSV has no addresses: the README says which devices still need one
    assert "radar-110, radar-111" in (bundle / "README.txt").read_text()
    acl = load_hub_config(site_config).provisioning.acl_file.read_text()
    assert "user sunrise/gw-wing\n" in acl


def test_a_csv_with_bad_rows_reports_each_and_imports_nothing(
    site_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beds, devices = tmp_path / "beds.csv", tmp_path / "devices.csv"
    beds.write_text(BEDS_CSV)
    devices.write_text(BAD_DEVICES_CSV)
    base = ["provision", "--config", str(site_config), "import"]
    assert carewatch([*base, str(beds)]) == 0
    before = load_hub_config(site_config).provisioning.acl_file.read_text()
    err = refused(site_config, capsys, "import", str(devices), "--out", str(tmp_path / "b"))
    assert "line 3: device radar-112" in err and "seeed-nothing" in err
    assert "line 4: device radar-113: no bed with code 'SR-E-999'" in err
    assert "nothing was imported" in err
    assert not (tmp_path / "b").exists()
    assert load_hub_config(site_config).provisioning.acl_file.read_text() == before
    capsys.readouterr()
    assert carewatch(["registry", "--config", str(site_config), "list", "devices"]) == 0
    assert "radar-110" not in capsys.readouterr().out


# --- labels --------------------------------------------------------------------------------------


def test_labels_encode_the_installer_link_and_the_sheet_has_one_label_per_bed(
    site_config: Path, tmp_path: Path
) -> None:
    beds = tmp_path / "beds.csv"
    beds.write_text(BEDS_CSV)
    base = ["provision", "--config", str(site_config)]
    assert carewatch([*base, "import", str(beds)]) == 0
    assert carewatch([*base, "labels", "sunrise", "--out", str(tmp_path / "labels")]) == 0
    codes = ["SR-E-101", "SR-E-110", "SR-E-111"]
    assert sorted(p.stem for p in (tmp_path / "labels").glob("*.png")) == codes
    url = installer_url("https://hub.example", "SR-E-101")
    assert url == "https://hub.example/installer#bed=SR-E-101"
    label = Image.open(tmp_path / "labels" / "SR-E-101.png").convert("L")
    expected = Image.open(io.BytesIO(qr_png(url))).convert("L")
    left = (label.width - expected.width) // 2
    crop = label.crop((left, 0, left + expected.width, expected.height))
    assert crop.tobytes() == expected.tobytes()  # the QR code of exactly that URL
    assert segno.make(url, error="m").designator  # a regular QR code, not a micro one

    pdf = asyncio.run(_uncompressed_sheet(site_config))
    assert pdf.count(b"/Type /Page\n") == len(codes)
    for code in codes:
        assert pdf.count(f"({code})".encode()) == 1
    assert (tmp_path / "labels" / "sunrise-labels.pdf").read_bytes().startswith(b"%PDF")


async def _uncompressed_sheet(config_path: Path) -> bytes:
    """The site's PDF sheet without stream compression, so its text can be searched."""
    config = load_hub_config(config_path)
    store = await Store.open(config.database)
    try:
        coverage = PolicyCoverage(WatchPolicy(WatchConfig()))
        registry = (
            await RegistryService.open(store, SystemClock(), rule_coverage=coverage)
        ).registry
        labels = site_labels(registry, "sunrise", "https://hub.example")
        data: bytes = site_pdf(labels, compress=False)
        return data
    finally:
        await store.close()


# --- the API ---------------------------------------------------------------------------------


async def test_the_api_serves_labels_and_refuses_a_bad_device_to_logged_in_callers(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        assert (await client.get("/api/labels/sunrise.pdf")).status_code == 401
        csrf = await login(client, INSTALLER)
        png = await client.get("/api/labels/bed/SR-E-101.png")
        assert (png.status_code, png.headers["content-type"]) == (200, "image/png")
        assert Image.open(io.BytesIO(png.content)).width >= 480
        pdf = await client.get("/api/labels/sunrise.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert (await client.get("/api/labels/bed/NOPE.png")).status_code == 404
        bad = await client.post(
            "/api/provision/devices",
            headers={"X-CSRF-Token": csrf},
            json={"site": "sunrise", "gateway": "gw-west", "id": "button-201",
                  "profile": "shelly-blu-button1", "mac": BUTTON_MAC, "key": "ab" * 15,
                  "bed": "SR-W-201"},
        )  # fmt: skip
        assert bad.status_code == 422
        assert bad.json()["detail"] == "BTHome key must be 32 hex characters, got 30"
