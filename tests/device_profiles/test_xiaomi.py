import pytest

from contract.wire import Observation
from device_profiles import DeviceProfile, load_profile
from edge.decoders.adstructures import parse_advertising_data
from edge.decoders.base import Advertisement, DecodeError
from edge.decoders.registry import make_ble_decoder
from edge.decoders.xiaomi import MIBEACON_UUID, XiaomiDecoder, parse_header
from simulators.xiaomi import (
    BATTERY,
    JTYJGD03MI,
    PS1BB,
    SMOKE,
    advert,
    pressure,
    service_data,
    smoke,
)

# Reference section 5.1 test vectors.
DOOR_MAC = "E4:AA:EC:81:21:AE"
DOOR_KEY = bytes.fromhex("017e52d2684779298709b117c0a75a7b")
DOOR_VECTOR = "58 58 8B 09 A3 AE 21 81 EC AA E4 0E 2C 55 3C 04 00 00 D2 8A 50 0C"
MOTION_MAC = "18:C2:3C:20:8E:77"
MOTION_KEY = bytes.fromhex("4960bb9f8711b4ffd7df1756d11427ae")
MOTION_VECTOR = "58 59 8D 0A 8C 77 8E 20 3C C2 18 5A 27 36 28 EC 32 06 00 00 C4 26 40 15"
PLAIN_VECTOR = "40 30 DD 03 24 03 00 01 01"
MAC = "A4:C1:38:5E:00:01"
KEY = bytes(range(16))


def _test_profile(product_id: int, rules: list[dict[str, object]]) -> DeviceProfile:
    return DeviceProfile.model_validate(
        {
            "model": "test-xiaomi",
            "vendor": "test",
            "name": "test",
            "connection": "ble",
            "decoder": "xiaomi",
            "product_id": product_id,
            "supervision_s": 600,
            "rules": rules,
        }
    )


def _adv(address: str, data: bytes, rssi: int = -60) -> Advertisement:
    return Advertisement(address, rssi, {MIBEACON_UUID: data})


def _summary(observations: list[Observation]) -> dict[str, object]:
    return {obs.name: obs.value for obs in observations}


def _mat(key: bytes | None = KEY, address: str = MAC) -> XiaomiDecoder:
    return XiaomiDecoder(load_profile("linptech-ps1bb"), "bed-1", address, key)


def _smoke_detector(key: bytes | None = KEY) -> XiaomiDecoder:
    return XiaomiDecoder(load_profile("xiaomi-jtyjgd03mi"), "smoke-1", MAC, key)


def test_door_vector_decrypts_to_door_left_open() -> None:
    # 0x1019 = 2, "closing timeout / left open": xiaomi-ble reports it as opening + left open.
    profile = _test_profile(0x098B, [{"source": "opening", "reading": "contact_open"}])
    decoder = XiaomiDecoder(profile, "door-1", DOOR_MAC, DOOR_KEY)
    observations = decoder.decode(_adv(DOOR_MAC, bytes.fromhex(DOOR_VECTOR)), 1.0)
    assert _summary(observations) == {"contact_open": True}


def test_motion_vector_decrypts_to_motion() -> None:
    profile = _test_profile(0x0A8D, [{"source": "motion", "reading": "motion"}])
    decoder = XiaomiDecoder(profile, "room-1", MOTION_MAC, MOTION_KEY)
    observations = decoder.decode(_adv(MOTION_MAC, bytes.fromhex(MOTION_VECTOR)), 1.0)
    assert _summary(observations) == {"motion": True}


def test_unencrypted_vector_is_a_motion_event() -> None:
    profile = _test_profile(0x03DD, [{"source": "motion", "event": "device_test"}])
    decoder = XiaomiDecoder(profile, "room-1", MAC, None)
    observations = decoder.decode(_adv(MAC, bytes.fromhex(PLAIN_VECTOR)), 1.0)
    assert [(o.kind, o.name, o.value) for o in observations] == [
        ("event", "device_test", "motion_detected")
    ]


def test_reference_headers_parse() -> None:
    door = parse_header(bytes.fromhex(DOOR_VECTOR))
    assert (door.frame_control, door.product_id, door.frame_counter) == (0x5858, 0x098B, 0xA3)
    assert (door.version, door.encrypted, door.has_objects) == (5, True, True)
    assert (door.mac, door.objects_at) == (DOOR_MAC, 11)
    plain = parse_header(bytes.fromhex(PLAIN_VECTOR))
    assert (plain.version, plain.encrypted, plain.mac, plain.objects_at) == (3, False, None, 5)


@pytest.mark.parametrize(("present", "expected"), [(True, True), (False, False)])
def test_pressure_mat_profile_maps_occupancy(present: bool, expected: bool) -> None:
    raw = pressure(MAC, 0x0100, present, key=KEY)
    decoder = make_ble_decoder(load_profile("linptech-ps1bb"), "bed-1", MAC, KEY)
    observations = decoder.decode(parse_advertising_data(MAC, -70, raw), 1.0)
    assert _summary(observations) == {"occupancy": expected, "rssi": -70}


def test_smoke_profile_maps_smoke_and_battery() -> None:
    data = service_data(JTYJGD03MI, 7, [(SMOKE, b"\x01"), (BATTERY, b"\x55")], mac=MAC, key=KEY)
    observations = _smoke_detector().decode(_adv(MAC, data), 1.0)
    assert _summary(observations) == {"smoke": True, "battery": 85, "rssi": -60}


def test_plain_smoke_advert_decodes_without_a_key() -> None:
    decoder = _smoke_detector(key=None)
    adv = parse_advertising_data(MAC, -50, smoke(MAC, 3, False))
    assert _summary(decoder.decode(adv, 1.0)) == {"smoke": False, "rssi": -50}


def test_identical_resend_yields_nothing_and_older_counter_is_replay() -> None:
    decoder = _mat()
    first = _adv(MAC, service_data(PS1BB, 0x0205, [(0x483C, b"\x01")], mac=MAC, key=KEY))
    assert _summary(decoder.decode(first, 1.0))["occupancy"] is True
    assert decoder.decode(first, 1.1) == []
    for counter in (0x0204, 0x0205, 0x0105):  # older, same, older extended counter
        old = _adv(MAC, service_data(PS1BB, counter, [(0x483C, b"\x00")], mac=MAC, key=KEY))
        with pytest.raises(DecodeError) as caught:
            decoder.decode(old, 2.0)
        assert caught.value.reason == "replay"
    newer = _adv(MAC, service_data(PS1BB, 0x0300, [(0x483C, b"\x00")], mac=MAC, key=KEY))
    assert _summary(decoder.decode(newer, 3.0))["occupancy"] is False


def test_frame_counter_wrap_into_the_extended_counter_is_an_increase() -> None:
    decoder = _mat()
    decoder.decode(_adv(MAC, service_data(PS1BB, 0x01FF, [(0x483C, b"\x01")], mac=MAC, key=KEY)), 1)
    wrapped = _adv(MAC, service_data(PS1BB, 0x0200, [(0x483C, b"\x00")], mac=MAC, key=KEY))
    assert _summary(decoder.decode(wrapped, 2.0))["occupancy"] is False


def test_plain_repeated_frame_counter_yields_nothing() -> None:
    decoder = _mat(key=None)
    adv = parse_advertising_data(MAC, -60, pressure(MAC, 9, True))
    assert _summary(decoder.decode(adv, 1.0))["occupancy"] is True
    assert decoder.decode(adv, 1.5) == []
    following = parse_advertising_data(MAC, -60, pressure(MAC, 10, False))
    assert _summary(decoder.decode(following, 2.0)) == {"occupancy": False, "rssi": -60}


def test_wrong_key_is_bad_key_then_corruption_is_decrypt_failed() -> None:
    data = service_data(PS1BB, 0x0500, [(0x483C, b"\x01")], mac=MAC, key=KEY)
    with pytest.raises(DecodeError) as caught:
        _mat(key=bytes(16)).decode(_adv(MAC, data), 1.0)
    assert caught.value.reason == "bad_key"
    decoder = _mat()
    decoder.decode(_adv(MAC, data), 1.0)
    later = bytearray(service_data(PS1BB, 0x0501, [(0x483C, b"\x00")], mac=MAC, key=KEY))
    later[11] ^= 0x01  # a ciphertext bit flipped in the air
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(MAC, bytes(later)), 2.0)
    assert caught.value.reason == "decrypt_failed"


def test_plaintext_from_an_encrypted_device_and_the_reverse_are_mismatches() -> None:
    with pytest.raises(DecodeError) as caught:
        _mat().decode(_adv(MAC, service_data(PS1BB, 1, [(0x483C, b"\x01")], mac=MAC)), 1.0)
    assert caught.value.reason == "encryption_mismatch"
    encrypted = service_data(PS1BB, 1, [(0x483C, b"\x01")], mac=MAC, key=KEY)
    with pytest.raises(DecodeError) as caught:
        _mat(key=None).decode(_adv(MAC, encrypted), 1.0)
    assert caught.value.reason == "encryption_mismatch"


def test_advert_of_another_product_is_wrong_product() -> None:
    with pytest.raises(DecodeError) as caught:
        _mat().decode(
            _adv(MAC, service_data(JTYJGD03MI, 1, [(SMOKE, b"\x01")], mac=MAC, key=KEY)), 1
        )
    assert caught.value.reason == "wrong_product"


def test_advert_carrying_another_mac_is_wrong_address() -> None:
    data = service_data(PS1BB, 1, [(0x483C, b"\x01")], mac=MAC, key=KEY)
    with pytest.raises(DecodeError) as caught:
        _mat(address="A4:C1:38:5E:00:02").decode(_adv(MAC, data), 1.0)
    assert caught.value.reason == "wrong_address"


def test_legacy_encryption_is_unsupported() -> None:
    data = service_data(PS1BB, 1, [(0x483C, b"\x01")], mac=MAC, key=KEY, version=3)
    with pytest.raises(DecodeError) as caught:
        _mat().decode(_adv(MAC, data), 1.0)
    assert caught.value.reason == "unsupported"


def test_advert_without_objects_is_heard_but_makes_nothing() -> None:
    data = bytes.fromhex("1020 4C3F 05") + bytes.fromhex(MAC.replace(":", ""))[::-1]
    assert _mat().decode(_adv(MAC, data), 1.0) == []


def test_advert_without_mibeacon_service_data_is_not_xiaomi() -> None:
    adv = parse_advertising_data(MAC, -60, bytes.fromhex("02 01 06 05 16 D2 FC 40 00"))
    with pytest.raises(DecodeError) as caught:
        _mat().decode(adv, 1.0)
    assert caught.value.reason == "not_xiaomi"


@pytest.mark.parametrize(
    "data",
    [
        "58 58 4C",  # shorter than the header
        "D8 58 4C 3F 01 01 00 5E 38 C1 A4",  # mesh
        "58 18 4C 3F 01",  # version 1
        "58 58 4C 3F 01 01 00 5E 38 C1 A4 00 00 00",  # encrypted, too short for counter + MIC
        "50 50 4C 3F 01 01 00 5E 38 C1 A4 3C",  # plaintext object cut short
    ],
)
def test_truncated_or_invalid_frames_are_malformed(data: str) -> None:
    key = KEY if int(data[:2], 16) & 0x08 else None
    with pytest.raises(DecodeError) as caught:
        _mat(key=key).decode(_adv(MAC, bytes.fromhex(data)), 1.0)
    assert caught.value.reason == "malformed"


def test_bad_value_for_a_reading_is_bad_value() -> None:
    profile = _test_profile(PS1BB, [{"source": "occupancy", "reading": "battery"}])
    decoder = XiaomiDecoder(profile, "bed-1", MAC, None)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(_adv(MAC, service_data(PS1BB, 1, [(0x483C, b"\x01")], mac=MAC)), 1.0)
    assert caught.value.reason == "bad_value"


def test_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        _mat(key=bytes(12))


def test_simulated_advert_is_flags_and_service_data() -> None:
    raw = advert(b"\x01\x02")
    assert raw.hex(" ") == "02 01 06 05 16 95 fe 01 02"
