"""edge.config: a usable config loads; every mistake names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.yaml_documents import ConfigError
from edge.config import DeviceConfig, EdgeConfig, OutboxConfig, load_config

GOOD = """\
site: sunrise
gateway: gw-east
broker: {host: 127.0.0.1, port: 1883, username: null, password: null, tls: false, keepalive: 30}
outbox: {path: /var/lib/carewatch/outbox.db}
ble: {backend: simulated, socket: /run/carewatch/ble-air.sock}
devices:
  - {id: radar-b12, profile: seeed-mr60fda1, port: /dev/serial/by-id/usb-radar}
  - {id: button-b12, profile: shelly-blu-button1, address: "b4:35:22:f5:3d:a4", key: "90bffd73cb6b26ef58a7a8eba9232036"}
"""  # noqa: E501


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return [p.replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.site == "sunrise"
    assert config.gateway == "gw-east"
    assert config.broker.keepalive == 30
    assert config.ble.backend == "simulated"
    radar, button = config.devices
    assert radar.port == "/dev/serial/by-id/usb-radar"
    assert button.address == "B4:35:22:F5:3D:A4"  # normalised
    assert button.key_bytes == bytes.fromhex("90bffd73cb6b26ef58a7a8eba9232036")


def test_bad_key_names_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("9232036", "923203")
    assert problems(tmp_path, text) == [
        "edge.yaml line 8, devices[1].key: BTHome key must be 32 hex characters"
    ]


def test_several_mistakes_each_with_line_and_field(tmp_path: Path) -> None:
    text = """\
site: Sunrise
gateway: gw-east
broker:
  port: 99999
outbox: {path: /tmp/outbox.db}
ble: {backend: simulated, socket: /tmp/air.sock}
devices:
  - id: radar-b12
    profile: seeed-mr60fda1
  - id: radar-b12
    profile: seeed-mr60fda1
    port: /dev/ttyUSB1
  - {id: button-b12, profile: shelly-blu-button1, address: "B4:35:22:F5:3D:A4"}
  - {id: button-b13, profile: shelly-blu-button1, address: "b4:35:22:f5:3d:a4"}
  - {id: ghost, profile: no-such-model, port: /dev/ttyUSB2}
  - {id: pendant, profile: shelly-blu-button1, addres: "B4:35:22:F5:3D:A5"}
"""
    found = problems(tmp_path, text)
    assert found[0].startswith("edge.yaml line 1, site: 'Sunrise' is not a valid identifier")
    assert "edge.yaml line 4, broker.port: Input should be less than or equal to 65535" in found
    assert "edge.yaml line 16, devices[5].addres: unknown field" in found
    assert len(found) == 3  # shape errors first; the device checks need a valid shape

    fixed = (
        text.replace("Sunrise", "sunrise").replace("99999", "1883").replace("addres:", "address:")
    )
    found = problems(tmp_path, fixed)
    assert found[0] == (
        "edge.yaml line 8, devices[0]: profile seeed-mr60fda1 connects over serial: "
        "'port' is missing"
    )
    assert (
        found[1] == "edge.yaml line 10, devices[1].id: duplicate id 'radar-b12' (also devices[0])"
    )
    assert found[2] == (
        "edge.yaml line 14, devices[3].address: duplicate address 'B4:35:22:F5:3D:A4' "
        "(also devices[2])"
    )
    assert found[3].startswith(
        "edge.yaml line 15, devices[4].profile: unknown device profile 'no-such-model'"
    )
    assert len(found) == 4


def test_ble_device_needs_address_and_no_port(tmp_path: Path) -> None:
    text = GOOD.replace('address: "b4:35:22:f5:3d:a4"', "port: /dev/ttyUSB3")
    assert problems(tmp_path, text) == [
        "edge.yaml line 8, devices[1]: profile shelly-blu-button1 connects over BLE: "
        "'address' is missing",
        "edge.yaml line 8, devices[1].port: profile shelly-blu-button1 is a BLE device",
    ]


def test_ble_devices_need_a_backend(tmp_path: Path) -> None:
    text = GOOD.replace("ble: {backend: simulated, socket: /run/carewatch/ble-air.sock}", "")
    assert problems(tmp_path, text) == [
        "edge.yaml line 8, devices[1].profile: a BLE device needs ble.backend other than 'none'"
    ]


def test_simulated_backend_needs_socket_and_bad_address(tmp_path: Path) -> None:
    text = GOOD.replace(", socket: /run/carewatch/ble-air.sock", "").replace(
        "b4:35:22:f5:3d:a4", "b4:35:22"
    )
    assert problems(tmp_path, text) == [
        "edge.yaml line 5, ble: the simulated backend needs 'socket' (a Unix datagram socket path)",
        "edge.yaml line 8, devices[1].address: BLE address must look like B4:35:22:F5:3D:A4, "
        "got 'b4:35:22'",
    ]


def test_missing_field_points_at_enclosing_mapping(tmp_path: Path) -> None:
    text = GOOD.replace("outbox: {path: /var/lib/carewatch/outbox.db}", "outbox: {}")
    assert problems(tmp_path, text) == ["edge.yaml line 4, outbox.path: this field is required"]


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = GOOD + "site: sunset\n"
    assert problems(tmp_path, text) == ["edge.yaml line 9, site: this key appears twice"]


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    text = GOOD.replace("gateway: gw-east", "gateway: [gw-east")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith("edge.yaml line ")
    assert "invalid YAML" in problem


def test_not_a_mapping_and_unreadable(tmp_path: Path) -> None:
    assert problems(tmp_path, "- just\n- a list\n") == [
        "edge.yaml line 1: the file must be a mapping (site:, gateway:, ...)"
    ]
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_built_in_python_is_checked_too(tmp_path: Path) -> None:
    config = EdgeConfig(
        site="sunrise",
        gateway="gw-east",
        outbox=OutboxConfig(path=tmp_path / "outbox.db"),
        devices=[DeviceConfig(id="radar-b12", profile="seeed-mr60fda1", port="/dev/ttyUSB0")],
    )
    assert config.ble.backend == "none"
    with pytest.raises(ValueError, match=r"devices\[0\]: profile seeed-mr60fda1 connects over"):
        EdgeConfig(
            site="sunrise",
            gateway="gw-east",
            outbox=OutboxConfig(path=tmp_path / "outbox.db"),
            devices=[DeviceConfig(id="radar-b12", profile="seeed-mr60fda1")],
        )
