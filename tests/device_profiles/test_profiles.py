from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.wire import EVENTS, READINGS
from device_profiles import (
    DeviceProfile,
    FieldRule,
    ProfileError,
    available_profiles,
    load_profile,
    loader,
)

SHIPPED = {
    "seeed-mr60fda1",
    "seeed-mr60bha1",
    "seeed-mr60fda2",
    "seeed-mr60bha2",
    "hlk-ld2410",
    "shelly-blu-button1",
    "shelly-blu-door-window",
    "shelly-blu-motion",
    "bthome-smoke",
    "xiaomi-jtyjgd03mi",
    "linptech-ps1bb",
}


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


def _serial_dict(decoder: str, rules: Sequence[Mapping[str, object]]) -> dict[str, object]:
    return _profile_dict(
        connection="serial", decoder=decoder, serial={"baudrate": 115200}, rules=rules
    )


def test_tinyframe_rules_need_a_hex_type_and_a_format() -> None:
    with pytest.raises(ValidationError, match="'format' is needed by decoder 'tinyframe'"):
        DeviceProfile.model_validate(
            _serial_dict("tinyframe", [{"source": "0E02", "event": "fall"}])
        )
    bad_source = [{"source": "0E 02", "format": "u8", "event": "fall"}]
    with pytest.raises(ValidationError, match="hex message type"):
        DeviceProfile.model_validate(_serial_dict("tinyframe", bad_source))
    bad_format = [{"source": "0E02", "format": "f64", "event": "fall"}]
    with pytest.raises(ValidationError, match="format"):
        DeviceProfile.model_validate(_serial_dict("tinyframe", bad_format))


def test_format_is_refused_outside_tinyframe() -> None:
    rules = [{"source": "83 01", "format": "u8", "event": "fall"}]
    with pytest.raises(ValidationError, match="only by it"):
        DeviceProfile.model_validate(_serial_dict("micradar", rules))


def test_ld2410_sources_are_report_fields() -> None:
    rules = [{"source": "target", "reading": "presence"}]
    with pytest.raises(ValidationError, match="not one of target_state"):
        DeviceProfile.model_validate(_serial_dict("ld2410", rules))


def test_xiaomi_profiles_need_a_product_id_and_only_they_have_one() -> None:
    with pytest.raises(ValidationError, match="'product_id' is needed by decoder 'xiaomi'"):
        DeviceProfile.model_validate(_profile_dict(decoder="xiaomi"))
    with pytest.raises(ValidationError, match="'product_id'"):
        DeviceProfile.model_validate(_profile_dict(product_id=0x0997))
    with pytest.raises(ValidationError, match="decoder 'xiaomi' needs connection 'ble'"):
        DeviceProfile.model_validate(
            _serial_dict("xiaomi", [{"source": "smoke", "reading": "smoke"}])
        )


@pytest.mark.parametrize(
    ("model", "decoder", "baudrate", "sources"),
    [
        ("seeed-mr60bha1", "micradar", 115200, {"84 01", "81 02", "85 02", "80 01", "80 02"}),
        ("seeed-mr60fda2", "tinyframe", 115200, {"0E02", "0F09"}),
        ("seeed-mr60bha2", "tinyframe", 115200, {"0A14", "0A15", "0F09"}),
        ("hlk-ld2410", "ld2410", 256000, {"target_state"}),
    ],
)
def test_serial_profiles_pin_decoder_baudrate_and_sources(
    model: str, decoder: str, baudrate: int, sources: set[str]
) -> None:
    profile = load_profile(model)
    assert profile.decoder == decoder
    assert profile.serial is not None and profile.serial.baudrate == baudrate
    assert {rule.source for rule in profile.rules} == sources


@pytest.mark.parametrize("model", ["seeed-mr60bha1", "seeed-mr60bha2"])
def test_bed_radars_ignore_a_zero_heart_rate_but_pass_a_zero_breathing_rate(model: str) -> None:
    profile = load_profile(model)
    assert not profile.reports_zero("heart_rate")
    assert profile.reports_zero("respiration_rate")


def test_mr60bha1_pins_its_firmware() -> None:
    assert load_profile("seeed-mr60bha1").firmware == "G60SM1SYv010009"


def test_in_bed_is_said_by_bed_sensors_only() -> None:
    in_bed = {model: load_profile(model).in_bed for model in available_profiles()}
    assert {model: reading for model, reading in in_bed.items() if reading} == {
        "seeed-mr60bha1": "occupancy",
        "seeed-mr60bha2": "presence",
        "linptech-ps1bb": "occupancy",
    }


def test_tinyframe_profiles_keep_their_own_type_tables() -> None:
    fda2, bha2 = load_profile("seeed-mr60fda2"), load_profile("seeed-mr60bha2")
    assert {r.source: r.format for r in fda2.rules} == {"0E02": "u8", "0F09": "u8"}
    assert {r.source: r.format for r in bha2.rules} == {"0A14": "f32", "0A15": "f32", "0F09": "u8"}


@pytest.mark.parametrize(
    ("model", "product_id", "source", "reading"),
    [
        ("xiaomi-jtyjgd03mi", 0x0997, "smoke", "smoke"),
        ("linptech-ps1bb", 0x3F4C, "occupancy", "occupancy"),
    ],
)
def test_xiaomi_profiles_are_sleepy_with_product_ids(
    model: str, product_id: int, source: str, reading: str
) -> None:
    profile = load_profile(model)
    assert (profile.decoder, profile.product_id, profile.trigger_based) == (
        "xiaomi",
        product_id,
        True,
    )
    assert profile.rules[0].source == source and profile.rules[0].reading == reading


@pytest.mark.parametrize(
    ("model", "source", "reading"),
    [
        ("shelly-blu-door-window", "window", "contact_open"),
        ("shelly-blu-motion", "motion", "motion"),
    ],
)
def test_shelly_profiles_map_their_sensor_battery_and_rssi(
    model: str, source: str, reading: str
) -> None:
    profile = load_profile(model)
    assert [(r.source, r.reading) for r in profile.rules] == [
        (source, reading),
        ("battery", "battery"),
        ("signal_strength", "rssi"),
    ]
    assert profile.rules[0].values is None  # 1 = open / detected: no inversion


def test_in_bed_must_be_a_reading_the_profile_makes() -> None:
    fields = load_profile("seeed-mr60fda2").model_dump()
    with pytest.raises(ValidationError, match="in_bed 'occupancy' is not a reading"):
        DeviceProfile.model_validate({**fields, "in_bed": "occupancy"})
