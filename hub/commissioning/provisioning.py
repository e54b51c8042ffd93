"""Provisioning: sites, gateways with their broker credentials, devices with their addresses.

The registry (`RegistryService`) checks and stores every record; this module adds what an
installer needs around it:

- a gateway gets a strong random MQTT password, set in Mosquitto's password file with
  `mosquitto_passwd` (the password itself is never stored by the hub), an explicit block in the
  ACL file (re-provisioning replaces it), and a ready bundle for the gateway: `edge.yaml`,
  `ca.crt` when one is configured, and `README.txt`;
- a device gets its connection details (BLE MAC and key, or serial port), kept in the hub's
  database (table `provision_device`) so the gateway's `edge.yaml` can be written again.

Mosquitto reads the password and ACL files at start and on SIGHUP (`systemctl reload
mosquitto`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from contract.wire import HUB_STATUS_TOPIC, command_topic, data_topic, devices_topic, status_topic
from device_profiles import ProfileError, available_profiles, load_profile
from edge.config import DeviceConfig, EdgeConfig
from hub.commissioning.records import ProvisionRecords
from hub.config import HubConfig
from hub.core.store import Store
from hub.registry.models import Conflict, Device, Gateway, NotFound, RegistryError
from hub.registry.service import Actor, RegistryService

HUB_USER: Final = "carewatch-hub"
INSTALL_DIR: Final = "/etc/carewatch"
OUTBOX_PATH: Final = "/var/lib/carewatch/outbox.db"
MOSQUITTO_PASSWD: Final = "/usr/bin/mosquitto_passwd"
PASSWORD_BYTES: Final = 24  # 32 URL-safe characters, 192 bits
# Whether the caller may know of an existing device (the API's scope check).
Visible = Callable[[Device], bool]


class ProvisioningError(RegistryError):
    """Provisioning refused or could not finish; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Address:
    """How a gateway hears a device: a BLE MAC (with its key, if encrypted) or a serial port."""

    address: str | None = None
    key: str | None = None
    port: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    site: str
    gateway: str
    id: str
    profile: str
    address: Address
    bed: str | None = None
    room: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A gateway's files, ready to copy onto it."""

    directory: Path
    username: str
    files: list[Path]


def mqtt_username(site: str, gateway: str) -> str:
    return f"{site}/{gateway}"


# --- Mosquitto's files ------------------------------------------------------------------------


def set_mqtt_password(password_file: Path, username: str, password: str) -> None:
    """Add or change one user's password with mosquitto_passwd (which hashes it)."""
    executable = shutil.which("mosquitto_passwd") or MOSQUITTO_PASSWD
    if not Path(executable).is_file():
        raise ProvisioningError("mosquitto_passwd not found: apt-get install mosquitto")
    create = [] if password_file.exists() else ["-c"]
    password_file.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [executable, "-b", *create, str(password_file), username, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        problem = (result.stderr or result.stdout).strip()
        raise ProvisioningError(f"mosquitto_passwd failed for {password_file}: {problem}")


def _marker(edge: str, username: str) -> str:
    return f"# {edge} carewatch provision: {username}"


def acl_block(username: str, writes: list[str], reads: list[str]) -> str:
    lines = [_marker(">>>", username), f"user {username}"]
    lines += [f"topic write {topic}" for topic in writes]
    lines += [f"topic read {topic}" for topic in reads]
    return "\n".join([*lines, _marker("<<<", username)]) + "\n"


def hub_acl_block(username: str) -> str:
    return acl_block(
        username,
        [HUB_STATUS_TOPIC, command_topic("+", "+")],
        ["carewatch/v1/+/+/#"],
    )


def gateway_acl_block(site: str, gateway: str) -> str:
    writes = [data_topic(site, gateway), status_topic(site, gateway), devices_topic(site, gateway)]
    reads = [command_topic(site, gateway), HUB_STATUS_TOPIC]
    return acl_block(mqtt_username(site, gateway), writes, reads)


def put_acl_block(acl_file: Path, username: str, block: str) -> None:
    """Write `block` for `username` into the ACL file, replacing the one written before."""
    text = acl_file.read_text(encoding="utf-8") if acl_file.exists() else ""
    pattern = re.compile(
        re.escape(_marker(">>>", username)) + r".*?" + re.escape(_marker("<<<", username)) + r"\n?",
        re.DOTALL,
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text += ("\n" if text and not text.endswith("\n\n") else "") + block
    acl_file.parent.mkdir(parents=True, exist_ok=True)
    acl_file.write_text(text, encoding="utf-8")


# --- the gateway's bundle --------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def _device_entry(device: Device, address: Address) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": device.id, "profile": device.profile}
    for name in ("port", "address", "key"):
        if getattr(address, name) is not None:
            entry[name] = getattr(address, name)
    return entry


README: Final = """carewatch gateway {username}

Files: edge.yaml (holds the gateway's MQTT password: keep it private){ca_line}.

Install on the gateway (a Raspberry Pi with carewatch installed):

  sudo install -d -m 0755 {install_dir}
  sudo install -m 0600 edge.yaml {install_dir}/edge.yaml{ca_install}
  carewatch edge --config {install_dir}/edge.yaml      # or: systemctl restart carewatch-edge

On the hub, reload Mosquitto once so it reads the new password and ACL:

  sudo systemctl reload mosquitto

Devices in edge.yaml: {devices}.{missing}
"""


def readme(username: str, devices: list[str], missing: list[str], with_ca: bool) -> str:
    return README.format(
        username=username,
        install_dir=INSTALL_DIR,
        ca_line=", ca.crt (the broker's CA)" if with_ca else "",
        ca_install=f"\n  sudo install -m 0644 ca.crt {INSTALL_DIR}/ca.crt" if with_ca else "",
        devices=", ".join(devices) or "none yet",
        missing=(
            "\nRegistered without an address (add them with `carewatch provision device`): "
            + ", ".join(missing)
            + "."
            if missing
            else ""
        ),
    )


# --- the provisioner --------------------------------------------------------------------------


class Provisioner:
    def __init__(self, service: RegistryService, store: Store, config: HubConfig) -> None:
        self.service = service
        self._records = ProvisionRecords(store)
        self._config = config
        self._settings = config.provisioning

    @classmethod
    async def open(cls, service: RegistryService, store: Store, config: HubConfig) -> Provisioner:
        provisioner = cls(service, store, config)
        await provisioner._records.create()
        return provisioner

    @property
    def public_url(self) -> str:
        """The base of the labels' links: `provisioning.public_url`, else the web address."""
        web = self._config.web
        return self._settings.public_url or f"http://{web.host}:{web.port}"

    # Gateways.

    async def gateway(
        self, site: str, gateway: str, out: Path, actor: Actor, name: str | None = None
    ) -> Bundle:
        """Register the gateway (if new), give it a new password, and write its bundle."""
        if self.service.registry.data.find(Gateway, (site, gateway)) is None:
            fields = {"site": site, "id": gateway} | ({"name": name} if name else {})
            await self.service.create(Gateway, fields, actor)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        await asyncio.to_thread(self._write_broker_files, site, gateway, password)
        return await self.bundle(site, gateway, out, password)

    def _write_broker_files(self, site: str, gateway: str, password: str) -> None:
        settings = self._settings
        acl = settings.acl_file
        hub_user = self._config.broker.username or HUB_USER
        if not acl.exists() or _marker(">>>", hub_user) not in acl.read_text(encoding="utf-8"):
            put_acl_block(acl, hub_user, hub_acl_block(hub_user))
        set_mqtt_password(settings.password_file, mqtt_username(site, gateway), password)
        put_acl_block(acl, mqtt_username(site, gateway), gateway_acl_block(site, gateway))

    async def bundle(
        self, site: str, gateway: str, out: Path, password: str | None = None
    ) -> Bundle:
        """(Re)write the gateway's bundle; without `password`, keep the one already in `out`."""
        self.service.registry.data.get(Gateway, (site, gateway))
        if password is None:
            password = _bundle_password(out / "edge.yaml")
        addresses = await self._addresses()
        devices = [
            d
            for d in self.service.registry.data.all(Device)
            if (d.site, d.gateway) == (site, gateway)
        ]
        present = [d for d in devices if d.id in addresses]
        document = self._edge_document(site, gateway, password)
        document["devices"] = [_device_entry(d, addresses[d.id]) for d in present]
        _check_edge_document(document)
        return await asyncio.to_thread(
            self._write_bundle,
            out,
            document,
            [d.id for d in present],
            [d.id for d in devices if d.id not in addresses],
        )

    def _edge_document(self, site: str, gateway: str, password: str) -> dict[str, Any]:
        settings, broker = self._settings, self._config.broker
        ca_file = settings.ca_file or broker.ca_file
        return {
            "site": site,
            "gateway": gateway,
            "broker": {
                "host": settings.broker_host or broker.host,
                "port": settings.broker_port or broker.port,
                "tls": broker.tls if settings.tls is None else settings.tls,
                "ca_file": f"{INSTALL_DIR}/ca.crt" if ca_file else None,
                "username": mqtt_username(site, gateway),
                "password": password,
            },
            "outbox": {"path": OUTBOX_PATH},
            "ble": {"backend": "bleak"},
        }

    def _write_bundle(
        self, out: Path, document: dict[str, Any], present: list[str], missing: list[str]
    ) -> Bundle:
        out.mkdir(parents=True, exist_ok=True)
        edge = out / "edge.yaml"
        _write_private(edge, yaml.safe_dump(document, sort_keys=False))
        files = [edge]
        ca_file = self._settings.ca_file or self._config.broker.ca_file
        if ca_file:
            shutil.copyfile(ca_file, out / "ca.crt")
            files.append(out / "ca.crt")
        username = document["broker"]["username"]
        (out / "README.txt").write_text(readme(username, present, missing, bool(ca_file)))
        files.append(out / "README.txt")
        return Bundle(out, username, files)

    # Devices.

    async def device(
        self, request: DeviceRequest, actor: Actor, visible: Visible | None = None
    ) -> Device:
        """Check the device's profile and address, register it, and keep its address.

        `visible`: which existing devices the caller may know of (the API's scope); a clash
        with any other is refused without naming it. None: every device (the command line).
        """
        address = _checked_address(request)
        await self._check_unique(request.id, address, visible)
        self._check_bed_free(request)
        fields = {
            "id": request.id,
            "site": request.site,
            "gateway": request.gateway,
            "profile": request.profile,
            "bed": request.bed,
            "room": request.room,
            "role": request.role,
        }
        device = await self.service.create(Device, fields, actor)
        await self._records.save(device.id, address.address, address.key, address.port)
        return device

    async def _check_unique(
        self, device: str, address: Address, visible: Visible | None = None
    ) -> None:
        data = self.service.registry.data
        if data.find(Device, (device,)) is not None:
            raise Conflict(f"device id {device!r} is already registered; choose another id")
        for name in ("address", "port"):
            value = getattr(address, name)
            if value is None:
                continue
            for other, known in (await self._addresses()).items():
                if getattr(known, name) == value:
                    what = "MAC" if name == "address" else "serial port"
                    holder = data.find(Device, (other,))
                    if visible is not None and (holder is None or not visible(holder)):
                        # Another site's (or zone's) device: neither its id nor where it is.
                        raise Conflict(
                            f"{what} {value} is already registered elsewhere; ask an administrator"
                        )
                    raise Conflict(f"{what} {value} is already device {other!r}")

    def _check_bed_free(self, request: DeviceRequest) -> None:
        if request.bed is None:
            return
        data = self.service.registry.data
        for other in data.devices_of_bed(request.bed):
            if other.profile == request.profile:
                raise Conflict(
                    f"bed {request.bed} already has a {request.profile} ({other.id}); "
                    "move or remove it first, or bind this one to another bed"
                )

    async def _addresses(self) -> dict[str, Address]:
        return {
            device: Address(*known) for device, known in (await self._records.addresses()).items()
        }

    # Bulk import.

    async def import_csv(
        self, what: str, text: str, out: Path, actor: Actor
    ) -> tuple[dict[str, dict[str, int]], list[Bundle]]:
        """The registry's CSV import, then credentials and a bundle for each new gateway.

        Bundles go to `out/<site>-<gateway>/`.
        """
        before = set(self.service.registry.data.tables[Gateway])
        counts = await self.service.import_csv(what, text, actor)
        created = sorted(set(self.service.registry.data.tables[Gateway]) - before)
        bundles = [
            await self.gateway(site, gateway, out / f"{site}-{gateway}", actor)
            for site, gateway in created
        ]
        return counts, bundles


def _checked_address(request: DeviceRequest) -> Address:
    """The device's address, checked against its profile, in the installer's terms."""
    try:
        profile = load_profile(request.profile)
    except ProfileError:
        raise NotFound(
            f"unknown device profile {request.profile!r}; available: "
            + ", ".join(available_profiles())
        ) from None
    address = request.address
    if profile.connection == "serial":
        if address.address is not None or address.key is not None:
            raise ProvisioningError(
                f"profile {request.profile} connects over serial: give --port, not --mac/--key"
            )
        if address.port is None:
            raise ProvisioningError(f"profile {request.profile} connects over serial: give --port")
    else:
        if address.port is not None:
            raise ProvisioningError(
                f"profile {request.profile} connects over BLE: give --mac, not --port"
            )
        if address.address is None:
            raise ProvisioningError(f"profile {request.profile} connects over BLE: give --mac")
    return _normalised(request, address)


def _normalised(request: DeviceRequest, address: Address) -> Address:
    """The edge configuration's own checks of MAC and key format (and their normal form)."""
    fields = {"id": request.id, "profile": request.profile}
    fields |= {k: v for k, v in _fields_of(address).items() if v is not None}
    try:
        checked = DeviceConfig.model_validate(fields)
    except ValidationError as exc:
        raise ProvisioningError("; ".join(_problem(e, address) for e in exc.errors())) from None
    return Address(checked.address, checked.key, checked.port)


def _fields_of(address: Address) -> dict[str, str | None]:
    return {"address": address.address, "key": address.key, "port": address.port}


def _problem(error: Any, address: Address) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"] == ("key",) and address.key is not None:
        return f"{message}, got {len(address.key.strip())}"
    return message


def _bundle_password(edge_yaml: Path) -> str:
    try:
        document = yaml.safe_load(edge_yaml.read_text(encoding="utf-8"))
        password = document["broker"]["password"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise ProvisioningError(
            f"{edge_yaml} holds no gateway password: provision the gateway into that directory "
            "first (carewatch provision gateway SITE GATEWAY --out DIR)"
        ) from None
    if not isinstance(password, str):
        raise ProvisioningError(f"{edge_yaml}: broker.password is not a string")
    return password


def _check_edge_document(document: dict[str, Any]) -> None:
    """The bundle must load on the gateway (the CA is checked there, where it is installed)."""
    broker = {**document["broker"], "ca_file": None}
    try:
        EdgeConfig.model_validate({**document, "broker": broker})
    except ValidationError as exc:
        raise ProvisioningError(f"the gateway's edge.yaml would not load: {exc}") from None
