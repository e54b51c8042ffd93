import pytest

from contract.wire import Observation
from device_profiles import DeviceProfile, load_profile
from edge.decoders.adstructures import (
    decode_air_message,
    encode_air_message,
    parse_advertising_data,
    split_ad_structures,
)
from edge.decoders.base import Advertisement, DecodeError
from edge.decoders.bthome import BTHOME_UUID, BTHomeDecoder
from edge.decoders.registry import make_ble_decoder
from simulators.bthome import Encryption, advert, button_press, door_window, motion, smoke

SPEC_KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
SPEC_MAC = "54:48:E6:8F:80:A5"
BUTTON_KEY = bytes.fromhex("90bffd73cb6b26ef58a7a8eba9232036")
BUTTON_MAC = "B4:35:22:F5:3D:A4"
PLAIN_MAC = "AA:BB:CC:DD:EE:01"

# Reference section 1.5, whole AD payloads.
SPEC_EXAMPLE = "02 01 06 0B 09 44 49 59 2D 73 65 6E 73 6F 72 0A 16 D2 FC 40 02 C4 09 03 BF 13"
DOOR_OPEN = "02 01 06 11 16 D2 FC 40 00 4E 01 64 05 00 00 00 2D 01 3F 00 00"
SMOKE_90 = "02 01 06 0A 16 D2 FC 40 00 05 01 5A 29 01"
BED_OCCUPIED = "02 01 06 0A 16 D2 FC 40 00 10 01 5F 23 01"
LONG_PRESS = "02 01 06 0A 16 D2 FC 44 00 11 01 64 3A 04"
MOTION_100LX = "02 01 06 0E 16 D2 FC 40 00 21 01 64 05 10 27 00 21 01"


def _generic_profile(rules: list[dict[str, str]] | None = None) -> DeviceProfile:
    """By default maps every bthome-ble key the reference frames carry."""
    default = [
        {"source": "temperature", "reading": "temperature"},
        {"source": "humidity", "reading": "humidity"},
        {"source": "window", "reading": "contact_open"},
        {"source": "occupancy", "reading": "occupancy"},
        {"source": "motion", "reading": "motion"},
        {"source": "smoke", "reading": "smoke"},
        {"source": "battery", "reading": "battery"},
    ]
    return DeviceProfile.model_validate(
        {
            "model": "test-generic",
            "vendor": "test",
            "name": "test",
            "connection": "ble",
            "decoder": "bthome",
            "supervision_s": 600,
            "rules": default if rules is None else rules,
        }
    )


def _summary(observations: list[Observation]) -> dict[str, object]:
    return {obs.name: obs.value for obs in observations}


def _adv(address: str, service_data_hex: str, rssi: int = -60) -> Advertisement:
    return Advertisement(address, rssi, {BTHOME_UUID: bytes.fromhex(service_data_hex)})


def _button(key: bytes | None = BUTTON_KEY, address: str = BUTTON_MAC) -> BTHomeDecoder:
    return BTHomeDecoder(load_profile("shelly-blu-button1"), "call-1", address, key)


def test_spec_encryption_vector_decrypts_and_decodes() -> None:
    decoder = BTHomeDecoder(_generic_profile(), "room-1", SPEC_MAC, SPEC_KEY)
    observations = decoder.decode(_adv(SPEC_MAC, "41 e445f3c9962b 33221100 6c7c4519"), 1.0)
    assert _summary(observations) == {"temperature": 25.06, "humidity": 50.55}


def test_shelly_blu_motion_vector_decrypts_to_motion() -> None:
    decoder = BTHomeDecoder(_generic_profile(), "room-1", SPEC_MAC, SPEC_KEY)
    observations = decoder.decode(_adv(SPEC_MAC, "41 87b9 00112233 72b0231f"), 1.0)
    assert _summary(observations) == {"motion": True}


def test_shelly_blu_button1_vector_decrypts_to_a_call() -> None:
    observations = _button().decode(_adv(BUTTON_MAC, "45 0aeb84467f85 ba010000 3188788c"), 5.0)
    assert [(obs.kind, obs.name, obs.value) for obs in observations] == [
        ("event", "call_button", "press"),
        ("reading", "battery", 100),
        ("reading", "rssi", -60),
    ]
    assert all(obs.device == "call-1" and obs.at == 5.0 for obs in observations)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (SPEC_EXAMPLE, {"temperature": 25.0, "humidity": 50.55}),
        (DOOR_OPEN, {"contact_open": True, "battery": 100}),
        (SMOKE_90, {"smoke": True, "battery": 90}),
        (BED_OCCUPIED, {"occupancy": True, "battery": 95}),
        (MOTION_100LX, {"motion": True, "battery": 100}),
    ],
)
def test_reference_frames_decode_from_raw_advertising_data(
    frame: str, expected: dict[str, object]
) -> None:
    adv = parse_advertising_data(PLAIN_MAC, -70, bytes.fromhex(frame))
    decoder = BTHomeDecoder(_generic_profile(), "room-1", PLAIN_MAC, None)
    assert _summary(decoder.decode(adv, 1.0)) == expected


def test_spec_example_local_name_and_service_data_are_parsed() -> None:
    adv = parse_advertising_data(PLAIN_MAC, -70, bytes.fromhex(SPEC_EXAMPLE))
    assert adv.local_name == "DIY-sensor"
    assert adv.service_data == {BTHOME_UUID: bytes.fromhex("40 02 C4 09 03 BF 13")}
    assert (adv.address, adv.rssi) == (PLAIN_MAC, -70)


def test_long_press_reference_frame_is_a_call() -> None:
    adv = parse_advertising_data(PLAIN_MAC, -70, bytes.fromhex(LONG_PRESS))
    observations = _button(None, PLAIN_MAC).decode(adv, 1.0)
    assert _summary(observations) == {"call_button": "long_press", "battery": 100, "rssi": -70}


def test_smoke_profile_maps_smoke_battery_and_tamper() -> None:
    decoder = make_ble_decoder(load_profile("bthome-smoke"), "smoke-1", PLAIN_MAC, None)
    quiet = decoder.decode(_adv(PLAIN_MAC, "40 00 01 01 5A 29 00 2B 00"), 1.0)
    assert _summary(quiet) == {"smoke": False, "battery": 90, "rssi": -60}
    tampered = decoder.decode(_adv(PLAIN_MAC, "40 00 02 01 5A 29 00 2B 01"), 2.0)
    assert ("event", "tamper", True) in [(o.kind, o.name, o.value) for o in tampered]


def test_replayed_counter_is_rejected_and_identical_resend_yields_nothing() -> None:
    decoder = _button()
    first = button_press(1, 90, encryption=Encryption(BUTTON_KEY, BUTTON_MAC, 500))
    adv = parse_advertising_data(BUTTON_MAC, -60, first)
    assert _summary(decoder.decode(adv, 1.0))["call_button"] == "press"
    assert decoder.decode(adv, 1.5) == []
    older = button_press(2, 90, encryption=Encryption(BUTTON_KEY, BUTTON_MAC, 499))
    with pytest.raises(DecodeError) as caught:
        decoder.decode(parse_advertising_data(BUTTON_MAC, -60, older), 2.0)
    assert caught.value.reason == "replay"
    same_counter = button_press(3, 90, encryption=Encryption(BUTTON_KEY, BUTTON_MAC, 500))
    with pytest.raises(DecodeError, match="replay"):
        decoder.decode(parse_advertising_data(BUTTON_MAC, -60, same_counter), 3.0)
    newer = button_press(4, 90, "double_press", encryption=Encryption(BUTTON_KEY, BUTTON_MAC, 501))
    observations = decoder.decode(parse_advertising_data(BUTTON_MAC, -60, newer), 4.0)
    assert _summary(observations)["call_button"] == "double_press"


def test_wrong_key_is_rejected_as_bad_key() -> None:
    decoder = _button(key=bytes(16))
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(BUTTON_MAC, "45 0aeb84467f85 ba010000 3188788c"), 1.0)
    assert caught.value.reason == "bad_key"


def test_corrupted_advert_after_a_good_one_is_decrypt_failed() -> None:
    decoder = _button()
    decoder.decode(_adv(BUTTON_MAC, "45 0aeb84467f85 ba010000 3188788c"), 1.0)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(BUTTON_MAC, "45 0aeb84467f86 bb010000 3188788c"), 2.0)
    assert caught.value.reason == "decrypt_failed"


def test_plaintext_from_an_encrypted_device_is_rejected() -> None:
    decoder = _button()
    adv = parse_advertising_data(BUTTON_MAC, -60, button_press(9, 100))
    with pytest.raises(DecodeError) as caught:
        decoder.decode(adv, 1.0)
    assert caught.value.reason == "encryption_mismatch"


def test_encrypted_advert_to_a_device_without_key_is_rejected() -> None:
    decoder = _button(key=None)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(BUTTON_MAC, "45 0aeb84467f85 ba010000 3188788c"), 1.0)
    assert caught.value.reason == "encryption_mismatch"


def test_repeated_packet_id_yields_nothing_the_second_time() -> None:
    decoder = _button(key=None, address=PLAIN_MAC)
    adv = parse_advertising_data(PLAIN_MAC, -60, button_press(7, 100))
    assert _summary(decoder.decode(adv, 10.0))["call_button"] == "press"
    assert decoder.decode(adv, 10.2) == []
    older = parse_advertising_data(PLAIN_MAC, -60, button_press(6, 100))
    assert decoder.decode(older, 10.3) == []
    behind = parse_advertising_data(PLAIN_MAC, -60, button_press(1, 100, "long_press"))
    assert decoder.decode(behind, 10.4) == []  # 1 after 7 is 250 ahead: 6 behind
    after = parse_advertising_data(PLAIN_MAC, -60, button_press(8, 100, "long_press"))
    assert _summary(decoder.decode(after, 10.5))["call_button"] == "long_press"


def test_packet_id_seen_long_ago_counts_as_new() -> None:
    decoder = _button(key=None, address=PLAIN_MAC)
    adv = parse_advertising_data(PLAIN_MAC, -60, button_press(7, 100))
    decoder.decode(adv, 10.0)
    assert _summary(decoder.decode(adv, 100.0))["call_button"] == "press"


def test_packet_id_wraps_from_255_to_0() -> None:
    decoder = _button(key=None, address=PLAIN_MAC)
    decoder.decode(parse_advertising_data(PLAIN_MAC, -60, button_press(255, 100)), 1.0)
    wrapped = parse_advertising_data(PLAIN_MAC, -60, button_press(0, 100, "triple_press"))
    assert _summary(decoder.decode(wrapped, 1.1))["call_button"] == "triple_press"


def test_button_placeholder_and_hold_release_make_no_call() -> None:
    decoder = _button(key=None, address=PLAIN_MAC)
    placeholder = parse_advertising_data(PLAIN_MAC, -60, button_press(1, 80, "none"))
    assert _summary(decoder.decode(placeholder, 1.0)) == {"battery": 80, "rssi": -60}
    release = advert([(0x00, b"\x02"), (0x01, b"\x50"), (0x3A, b"\x81")], trigger_based=True)
    observations = decoder.decode(parse_advertising_data(PLAIN_MAC, -60, release), 2.0)
    assert "call_button" not in _summary(observations)


def test_advert_without_bthome_service_data_is_not_bthome() -> None:
    adv = parse_advertising_data(PLAIN_MAC, -60, bytes.fromhex("02 01 06 05 09 41 42 43 44"))
    with pytest.raises(DecodeError) as caught:
        _button(None, PLAIN_MAC).decode(adv, 1.0)
    assert caught.value.reason == "not_bthome"


@pytest.mark.parametrize("service_data", ["", "40 99 01", "60 01 64", "40 02 CA"])
def test_unparseable_service_data_is_malformed(service_data: str) -> None:
    decoder = BTHomeDecoder(_generic_profile(), "room-1", PLAIN_MAC, None)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(PLAIN_MAC, service_data), 1.0)
    assert caught.value.reason == "malformed"


def test_short_encrypted_service_data_is_malformed() -> None:
    with pytest.raises(DecodeError) as caught:
        _button().decode(_adv(BUTTON_MAC, "45 00 ba010000 3188788c"), 1.0)
    assert caught.value.reason == "malformed"


def test_value_of_the_wrong_type_for_a_reading_is_bad_value() -> None:
    profile = _generic_profile([{"source": "battery", "reading": "smoke"}])
    decoder = BTHomeDecoder(profile, "room-1", PLAIN_MAC, None)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(PLAIN_MAC, "40 01 5A"), 1.0)
    assert caught.value.reason == "bad_value"


def test_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        _button(key=bytes(8))


def test_smoke_simulator_round_trips_through_the_decoder() -> None:
    decoder = make_ble_decoder(load_profile("bthome-smoke"), "smoke-1", PLAIN_MAC, None)
    adv = parse_advertising_data(PLAIN_MAC, -48, smoke(3, True, 55, name="smoke"))
    assert adv.local_name == "smoke"
    assert _summary(decoder.decode(adv, 1.0)) == {"smoke": True, "battery": 55, "rssi": -48}


@pytest.mark.parametrize(
    "raw",
    ["02 01", "02 01 06 05 16 D2", "02 01 06 00 05", "02 16 D2", "01 FF"],
)
def test_malformed_ad_structures_are_rejected(raw: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_advertising_data(PLAIN_MAC, -60, bytes.fromhex(raw))
    assert caught.value.reason == "malformed_ad"


def test_zero_padding_after_the_ad_structures_is_accepted() -> None:
    raw = bytes.fromhex(SMOKE_90) + bytes(5)
    assert split_ad_structures(raw) == [(0x01, b"\x06"), (0x16, bytes.fromhex(SMOKE_90)[5:])]


def test_manufacturer_data_is_keyed_by_company_id() -> None:
    adv = parse_advertising_data(PLAIN_MAC, -60, bytes.fromhex("05 FF A9 0B 01 02 03 08 53 42"))
    assert adv.manufacturer_data == {0x0BA9: b"\x01\x02"}
    assert adv.local_name == "SB"


def test_air_message_round_trips() -> None:
    raw = bytes.fromhex(SMOKE_90)
    message = encode_air_message("aa:bb:cc:dd:ee:ff", -61, raw)
    assert decode_air_message(message) == ("AA:BB:CC:DD:EE:FF", -61, raw)


@pytest.mark.parametrize(
    "message",
    [
        b"not json",
        b"[1, 2]",
        b'{"address": "AA:BB", "rssi": -60, "adv": "00"}',
        b'{"address": "AA:BB:CC:DD:EE:FF", "rssi": "x", "adv": "00"}',
        b'{"address": "AA:BB:CC:DD:EE:FF", "rssi": true, "adv": "00"}',
        b'{"address": "AA:BB:CC:DD:EE:FF", "rssi": -60, "adv": "zz"}',
        b'{"address": "AA:BB:CC:DD:EE:FF", "rssi": -60}',
        b"\xff\xfe",
    ],
)
def test_bad_air_messages_raise_value_error(message: bytes) -> None:
    with pytest.raises(ValueError, match="air message"):
        decode_air_message(message)


def _shelly(model: str, key: bytes | None, address: str = SPEC_MAC) -> BTHomeDecoder:
    return BTHomeDecoder(load_profile(model), "dev-1", address, key)


def test_shelly_door_window_reference_payload_is_open() -> None:
    adv = parse_advertising_data(PLAIN_MAC, -70, bytes.fromhex(DOOR_OPEN))
    observations = _shelly("shelly-blu-door-window", None, PLAIN_MAC).decode(adv, 1.0)
    assert _summary(observations) == {"contact_open": True, "battery": 100, "rssi": -70}


@pytest.mark.parametrize(("is_open", "expected"), [(True, True), (False, False)])
def test_shelly_door_window_encrypted_maps_window_without_inversion(
    is_open: bool, expected: bool
) -> None:
    raw = door_window(1, is_open, 88, encryption=Encryption(SPEC_KEY, SPEC_MAC, 7))
    observations = _shelly("shelly-blu-door-window", SPEC_KEY).decode(
        parse_advertising_data(SPEC_MAC, -60, raw), 1.0
    )
    assert _summary(observations) == {"contact_open": expected, "battery": 88, "rssi": -60}


def test_shelly_door_window_ignores_rotation_illuminance_and_button() -> None:
    raw = advert(
        [(0x00, b"\x03"), (0x05, bytes(3)), (0x2D, b"\x00"), (0x3A, b"\x01"), (0x3F, b"\x20\x03")]
    )
    observations = _shelly("shelly-blu-door-window", None, PLAIN_MAC).decode(
        parse_advertising_data(PLAIN_MAC, -60, raw), 1.0
    )
    assert [(obs.kind, obs.name) for obs in observations] == [
        ("reading", "contact_open"),
        ("reading", "rssi"),
    ]


def test_shelly_blu_motion_vector_decodes_by_its_profile() -> None:
    adv = Advertisement(
        SPEC_MAC, -55, {BTHOME_UUID: bytes.fromhex("41 87b9 00112233 72b0231f")}, "SBMO-003Z"
    )
    observations = _shelly("shelly-blu-motion", SPEC_KEY).decode(adv, 1.0)
    assert _summary(observations) == {"motion": True, "rssi": -55}


def test_shelly_blu_motion_reference_frame_and_motion_cleared() -> None:
    decoder = _shelly("shelly-blu-motion", None, PLAIN_MAC)
    adv = parse_advertising_data(PLAIN_MAC, -70, bytes.fromhex(MOTION_100LX))
    assert _summary(decoder.decode(adv, 1.0)) == {"motion": True, "battery": 100, "rssi": -70}
    cleared = parse_advertising_data(PLAIN_MAC, -70, motion(0x22, False, 99))
    assert _summary(decoder.decode(cleared, 2.0)) == {"motion": False, "battery": 99, "rssi": -70}


def test_shelly_plaintext_to_an_encrypted_profile_is_a_mismatch() -> None:
    with pytest.raises(DecodeError) as caught:
        _shelly("shelly-blu-motion", SPEC_KEY).decode(
            parse_advertising_data(SPEC_MAC, -60, motion(1, True, 90)), 1.0
        )
    assert caught.value.reason == "encryption_mismatch"
