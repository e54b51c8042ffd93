from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from device_profiles import (
    DeviceProfile,
    FieldRule,
    ProfileError,
    available_profiles,
    load_profile,
    loader,
)
from edge.wire import EVENTS, READINGS

SHIPPED = {"seeed-mr60fda1", "shelly-blu-button1", "bthome-smoke"}


@pytest.fixture
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Profiles read from tmp_path instead of the package, with the cache emptied around."""
    monkeypatch.setattr(loader, "_profile_dir", lambda: tmp_path)
    load_profile.cache_clear()
    yield tmp_path
    load_profile.cache_clear()


def _profile_dict(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "x",
        "vendor": "v",
        "name": "n",
        "connection": "ble",
        "decoder": "bthome",
        "supervision_s": 60,
        "rules": [{"source": "smoke", "reading": "smoke"}],
    }
    return base | changes


def test_shipped_profiles_are_available() -> None:
    assert SHIPPED <= set(available_profiles())
    assert available_profiles() == sorted(available_profiles())


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_every_profile_loads_and_uses_the_canonical_vocabulary(model: str) -> None:
    profile = load_profile(model)
    assert profile.model == model
    for rule in profile.rules:
        assert rule.reading in READINGS or rule.event in EVENTS
    assert load_profile(model) is profile  # cached


def test_radar_profile_pins_serial_settings_and_firmware() -> None:
    profile = load_profile("seeed-mr60fda1")
    assert profile.serial is not None and profile.serial.baudrate == 115200
    assert profile.firmware == "G60FD1SYv010104"
    assert {rule.source for rule in profile.rules} == {"83 01", "83 05", "80 01", "80 02"}


def test_button_profile_is_trigger_based_with_long_supervision() -> None:
    profile = load_profile("shelly-blu-button1")
    assert profile.trigger_based
    assert (profile.supervision_s, profile.battery_low) == (90000, 20)


def test_unknown_model_lists_the_available_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("acme-teleporter")
    message = str(caught.value)
    assert "acme-teleporter" in message
    assert all(model in message for model in SHIPPED)


def test_path_like_model_names_are_unknown() -> None:
    with pytest.raises(ProfileError, match="unknown device model"):
        load_profile("../pyproject")


def test_invalid_yaml_names_the_file(profile_dir: Path) -> None:
    (profile_dir / "broken.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ProfileError, match=r"^broken\.yaml: invalid YAML"):
        load_profile("broken")


def test_validation_error_names_the_file_and_field(profile_dir: Path) -> None:
    (profile_dir / "typo.yaml").write_text(
        "model: typo\nvendor: v\nname: n\nconnection: ble\ndecoder: bthome\n"
        "supervision_s: 60\nrules:\n  - source: smoke\n    reading: smok\n"
    )
    with pytest.raises(ProfileError) as caught:
        load_profile("typo")
    message = str(caught.value)
    assert message.startswith("typo.yaml: field rules.0: ")
    assert "unknown reading 'smok'" in message


def test_model_field_must_match_the_file_name(profile_dir: Path) -> None:
    (profile_dir / "a.yaml").write_text(
        "model: b\nvendor: v\nname: n\nconnection: ble\ndecoder: bthome\n"
        "supervision_s: 60\nrules:\n  - source: smoke\n    reading: smoke\n"
    )
    with pytest.raises(ProfileError, match=r"a\.yaml: field 'model' is 'b'"):
        load_profile("a")


def test_rule_needs_a_known_reading_or_event() -> None:
    with pytest.raises(ValidationError, match="unknown event 'falls'"):
        FieldRule(source="83 01", event="falls")
    with pytest.raises(ValidationError, match="exactly one"):
        FieldRule(source="83 01", event="fall", reading="presence")


def test_serial_profile_needs_serial_settings() -> None:
    rules = [{"source": "83 01", "event": "fall"}]
    data = _profile_dict(connection="serial", decoder="micradar", rules=rules)
    with pytest.raises(ValidationError, match="needs 'serial' settings"):
        DeviceProfile.model_validate(data)


def test_decoder_must_fit_the_connection() -> None:
    with pytest.raises(ValidationError, match="decoder 'micradar' needs connection 'serial'"):
        DeviceProfile.model_validate(_profile_dict(decoder="micradar"))


def test_micradar_sources_are_control_command_pairs() -> None:
    data = _profile_dict(
        connection="serial",
        decoder="micradar",
        serial={"baudrate": 115200},
        rules=[{"source": "8301", "event": "fall"}],
    )
    with pytest.raises(ValidationError, match="control/command pair"):
        DeviceProfile.model_validate(data)
