"""The hub's configuration file: mistakes are reported with the line and field they are on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.access.auth import hash_password
from hub.config import HubConfigError, load_hub_config
from tests.conftest import SMALL_SITE


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def valid() -> dict[str, object]:
    return {
        "broker": {"host": "127.0.0.1", "port": 1883},
        "database": "/var/lib/carewatch/hub.db",
        "web": {"port": 8080, "secret_key": "s" * 40},
        "users": [
            {
                "username": "nurse",
                "password_hash": hash_password("pw"),
                "role": "staff",
                "sites": ["*"],
            }
        ],
        "sites": [SMALL_SITE],
    }


def test_a_valid_file_loads(tmp_path: Path) -> None:
    config = load_hub_config(write(tmp_path, valid()))
    assert config.sites is not None
    assert config.sites[0].id == "sunrise"
    assert config.web.port == 8080


def test_a_wrong_field_is_named_with_its_line(tmp_path: Path) -> None:
    document = valid()
    document["web"] = {"port": 70000, "secret_key": "short"}
    path = write(tmp_path, document)
    with pytest.raises(HubConfigError) as caught:
        load_hub_config(path)
    message = str(caught.value)
    lines = path.read_text().splitlines()
    port_line = next(i for i, text in enumerate(lines, 1) if "70000" in text)
    assert f"line {port_line}, web.port" in message
    assert "web.secret_key" in message


def test_a_device_bound_to_a_missing_bed_is_refused(tmp_path: Path) -> None:
    site = {
        **SMALL_SITE,
        "devices": [
            {"id": "radar-9", "gateway": "gw-east", "profile": "seeed-mr60fda1", "bed": "NOPE-1"}
        ],
    }
    with pytest.raises(HubConfigError, match="no bed with code 'NOPE-1'"):
        load_hub_config(write(tmp_path, {**valid(), "sites": [site]}))


def test_an_unknown_device_profile_is_refused(tmp_path: Path) -> None:
    site = {
        **SMALL_SITE,
        "devices": [
            {"id": "radar-9", "gateway": "gw-east", "profile": "acme-9000", "bed": "SR-E-101"}
        ],
    }
    with pytest.raises(HubConfigError, match="acme-9000"):
        load_hub_config(write(tmp_path, {**valid(), "sites": [site]}))


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("web:\n  port: 8080\n  secret_key: [unclosed\n")
    with pytest.raises(HubConfigError, match="line"):
        load_hub_config(path)


def test_the_hub_command_refuses_a_bad_file_with_exit_status_2(tmp_path: Path) -> None:
    document = valid()
    document["sites"] = []
    path = write(tmp_path, document)
    result = subprocess.run(
        [sys.executable, "-m", "carewatch.cli", "hub", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "sites" in result.stderr
