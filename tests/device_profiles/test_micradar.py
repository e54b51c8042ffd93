from collections import Counter

import pytest

from contract.wire import Observation
from device_profiles import ProfileError, load_profile
from edge.decoders.base import DecodeError
from edge.decoders.micradar import (
    MicRadarDecoder,
    MicRadarFrame,
    MicRadarFramer,
    encode_frame,
)
from edge.decoders.registry import make_ble_decoder, make_serial_decoder

# Reference section 2A: the official example frames and the simulator table.
OFFICIAL = [
    "53 59 02 A4 00 01 0F 62 54 43",
    "53 59 02 A1 00 01 0F 5F 54 43",
    "53 59 01 02 00 01 0F BF 54 43",
    "53 59 84 0F 00 01 00 40 54 43",
    "53 59 84 0F 00 01 01 41 54 43",
    "53 59 80 81 00 01 0F BD 54 43",
]
SIMULATOR = {
    "fall": "53 59 83 01 00 01 01 32 54 43",
    "fall_cleared": "53 59 83 01 00 01 00 31 54 43",
    "stillness": "53 59 83 05 00 01 01 36 54 43",
    "present": "53 59 80 01 00 01 01 2F 54 43",
    "absent": "53 59 80 01 00 01 00 2E 54 43",
    "moving": "53 59 80 02 00 01 02 31 54 43",
    "body_movement_35": "53 59 80 03 00 01 23 53 54 43",
    "distance_150": "53 59 80 04 00 02 00 96 C8 54 43",
    "heart_rate_72": "53 59 85 02 00 01 48 7C 54 43",
    "breathing_16": "53 59 81 02 00 01 10 40 54 43",
    "in_bed": "53 59 84 01 00 01 01 33 54 43",
    "heartbeat": "53 59 01 01 00 01 0F BE 54 43",
}
EXPECTED = {
    "fall": [("event", "fall", True)],
    "fall_cleared": [("event", "fall", False)],
    "stillness": [("event", "stillness", True)],
    "present": [("reading", "presence", True)],
    "absent": [("reading", "presence", False)],
    "moving": [("reading", "motion", True)],
}
FALL = bytes.fromhex(SIMULATOR["fall"])
PRESENT = bytes.fromhex(SIMULATOR["present"])


def _summary(observations: list[Observation]) -> list[tuple[str, str, object]]:
    return [(obs.kind, obs.name, obs.value) for obs in observations]


@pytest.mark.parametrize("text", OFFICIAL + list(SIMULATOR.values()))
def test_reference_frame_is_framed_and_reencoded(text: str) -> None:
    raw = bytes.fromhex(text)
    framer = MicRadarFramer()
    frames = framer.feed(raw)
    assert len(frames) == 1
    frame = frames[0]
    assert (frame.ctrl, frame.cmd) == (raw[2], raw[3])
    assert encode_frame(frame.ctrl, frame.cmd, frame.data) == raw
    assert framer.rejected == Counter()
    assert framer.pending == 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_simulator_frame_decodes_by_profile(name: str) -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    observations = decoder.feed(bytes.fromhex(SIMULATOR[name]), at=100.0)
    assert _summary(observations) == EXPECTED[name]
    assert all(obs.device == "radar-1" and obs.at == 100.0 for obs in observations)


def test_stationary_motion_is_no_motion() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    observations = decoder.feed(encode_frame(0x80, 0x02, b"\x01"), at=1.0)
    assert _summary(observations) == [("reading", "motion", False)]


def test_frames_without_rule_are_ignored_and_counted_as_unmapped() -> None:
    decoder = MicRadarDecoder(load_profile("seeed-mr60fda1"), "radar-1")
    for name in ("heartbeat", "body_movement_35", "heart_rate_72", "heartbeat"):
        frame = MicRadarFramer().feed(bytes.fromhex(SIMULATOR[name]))[0]
        assert decoder.decode(frame, 1.0) == []
    assert decoder.unmapped == Counter({"01 01": 2, "80 03": 1, "85 02": 1})


def test_vital_sign_frames_decode_with_a_profile_that_maps_them() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60bha1"), "bed-1")
    stream = b"".join(
        bytes.fromhex(SIMULATOR[name]) for name in ("heart_rate_72", "breathing_16", "in_bed")
    )
    assert _summary(decoder.feed(stream, 1.0)) == [
        ("reading", "heart_rate", 72),
        ("reading", "respiration_rate", 16),
        ("reading", "occupancy", True),
    ]


def test_checksum_equal_to_header_byte_does_not_break_framing() -> None:
    body_movement = bytes.fromhex(SIMULATOR["body_movement_35"])
    assert body_movement[-3] == 0x53
    framer = MicRadarFramer()
    frames = framer.feed(body_movement + FALL + body_movement)
    assert [frame.source for frame in frames] == ["80 03", "83 01", "80 03"]
    assert frames[0].data == b"\x23"
    assert framer.rejected == Counter()


def test_heart_rate_0x43_inside_data_is_framed_by_length() -> None:
    heart_67 = encode_frame(0x85, 0x02, b"\x43")
    assert heart_67 == bytes.fromhex("53 59 85 02 00 01 43 77 54 43")
    decoder = make_serial_decoder(load_profile("seeed-mr60bha1"), "bed-1")
    observations = decoder.feed(heart_67 + heart_67, 1.0)
    assert _summary(observations) == [("reading", "heart_rate", 67)] * 2
    assert decoder.rejected == Counter()


def test_bad_checksum_is_counted_and_neighbours_come_through() -> None:
    bad = bytearray(FALL)
    bad[-3] ^= 0xFF
    framer = MicRadarFramer()
    frames = framer.feed(PRESENT + bytes(bad) + FALL)
    assert [frame.source for frame in frames] == ["80 01", "83 01"]
    assert framer.rejected == Counter({"bad_checksum": 1})


def test_bad_tail_is_counted_and_next_frame_comes_through() -> None:
    bad = FALL[:-2] + b"\x54\x44"
    framer = MicRadarFramer()
    frames = framer.feed(bad + PRESENT)
    assert [frame.source for frame in frames] == ["80 01"]
    assert framer.rejected == Counter({"bad_tail": 1})


def test_truncated_frame_is_completed_by_the_next_feed() -> None:
    framer = MicRadarFramer()
    assert framer.feed(PRESENT + FALL[:5]) == [MicRadarFrame(0x80, 0x01, b"\x01")]
    assert framer.pending == 5
    assert framer.feed(FALL[5:]) == [MicRadarFrame(0x83, 0x01, b"\x01")]
    assert framer.pending == 0
    assert framer.rejected == Counter()


def test_frame_cut_short_by_the_next_frame_is_rejected_and_the_next_survives() -> None:
    framer = MicRadarFramer()
    frames = framer.feed(FALL[:7] + PRESENT)
    assert [frame.source for frame in frames] == ["80 01"]
    assert sum(framer.rejected.values()) == 1
    assert set(framer.rejected) <= {"bad_checksum", "bad_tail"}


def test_garbage_between_frames_is_counted_once_per_run() -> None:
    framer = MicRadarFramer()
    frames = framer.feed(b"\x00\x43\x54\x53" + FALL + b"\xff" * 5 + b"\x53" + PRESENT)
    assert [frame.source for frame in frames] == ["83 01", "80 01"]
    assert framer.rejected == Counter({"garbage": 2})


def test_oversized_length_is_rejected_and_next_frame_comes_through() -> None:
    oversized = bytes.fromhex("53 59 80 01 01 2C 01")  # claims 300 data bytes
    framer = MicRadarFramer()
    frames = framer.feed(oversized + FALL)
    assert [frame.source for frame in frames] == ["83 01"]
    assert framer.rejected == Counter({"oversized": 1})


def test_byte_at_a_time_gives_the_same_frames_and_counts() -> None:
    bad = bytearray(PRESENT)
    bad[-3] ^= 0x01
    stream = (
        b"\x11\x22"
        + FALL
        + bytes(bad)
        + bytes.fromhex(SIMULATOR["body_movement_35"])
        + bytes.fromhex("53 59 80 01 FF FF")
        + bytes.fromhex(SIMULATOR["distance_150"])
        + b"\x53\x53\x59\x00"
        + PRESENT
    )
    whole = MicRadarFramer()
    expected = whole.feed(stream)
    single = MicRadarFramer()
    frames = [frame for byte in stream for frame in single.feed(bytes([byte]))]
    assert [frame.source for frame in expected] == ["83 01", "80 03", "80 04", "80 01"]
    assert frames == expected
    assert single.rejected == whole.rejected
    # "53 59 80 01 FF FF" and the false header in "53 53 59 00 53 59 80 ..." (length 0x5980)
    assert whole.rejected == Counter({"garbage": 2, "bad_checksum": 1, "oversized": 2})


def test_value_missing_from_rule_values_raises_bad_value() -> None:
    decoder = MicRadarDecoder(load_profile("seeed-mr60fda1"), "radar-1")
    frame = MicRadarFrame(0x80, 0x01, b"\x05")
    with pytest.raises(DecodeError) as caught:
        decoder.decode(frame, 1.0)
    assert caught.value.reason == "bad_value"


def test_serial_decoder_counts_decode_errors_and_carries_on() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    stream = encode_frame(0x80, 0x01, b"\x05") + encode_frame(0x83, 0x01, bytes(5)) + FALL
    observations = decoder.feed(stream, 1.0)
    assert _summary(observations) == [("event", "fall", True)]
    assert decoder.rejected == Counter({"bad_value": 1, "bad_length": 1})


def test_encode_frame_refuses_oversized_data() -> None:
    with pytest.raises(ValueError, match="256"):
        encode_frame(0x80, 0x01, bytes(257))


def test_registry_refuses_a_profile_of_the_other_kind() -> None:
    with pytest.raises(ProfileError, match="bthome"):
        make_serial_decoder(load_profile("bthome-smoke"), "smoke-1")
    with pytest.raises(ProfileError, match="micradar"):
        make_ble_decoder(load_profile("seeed-mr60fda1"), "radar-1", "AA:BB:CC:DD:EE:FF", None)


def test_stale_partial_frame_is_given_up_so_frames_behind_it_come_through() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    corrupted = bytes.fromhex("53 59 80 01 00 C8 01")  # claims 200 data bytes
    assert decoder.feed(corrupted, at=0.0) == []
    assert decoder.feed(FALL, at=0.5) == []  # still waiting for 200 bytes
    observations = decoder.feed(PRESENT, at=3.0)
    assert _summary(observations) == [("event", "fall", True), ("reading", "presence", True)]
    assert decoder.rejected == Counter({"truncated": 1})
    assert decoder.pending == 0


def test_partial_frame_completed_in_time_is_kept() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    assert decoder.feed(FALL[:4], at=0.0) == []
    assert _summary(decoder.feed(FALL[4:], at=1.5)) == [("event", "fall", True)]
    assert decoder.rejected == Counter()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("heart_rate_72", [("reading", "heart_rate", 72)]),
        ("breathing_16", [("reading", "respiration_rate", 16)]),
        ("in_bed", [("reading", "occupancy", True)]),
        ("present", [("reading", "presence", True)]),
        ("absent", [("reading", "presence", False)]),
        ("moving", [("reading", "motion", True)]),
        ("fall", []),  # not a BHA1 report
        ("heartbeat", []),
        ("distance_150", []),
    ],
)
def test_mr60bha1_profile_maps_the_reference_frames(
    name: str, expected: list[tuple[str, str, object]]
) -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60bha1"), "bed-1")
    assert _summary(decoder.feed(bytes.fromhex(SIMULATOR[name]), 1.0)) == expected
    assert decoder.rejected == Counter()


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (encode_frame(0x84, 0x01, b"\x00"), [("reading", "occupancy", False)]),
        (encode_frame(0x84, 0x01, b"\x02"), []),  # "none": the radar cannot tell
        (encode_frame(0x85, 0x02, b"\x00"), []),  # 0 bpm is no reading
        (encode_frame(0x81, 0x02, b"\x00"), [("reading", "respiration_rate", 0)]),  # judged
        (encode_frame(0x80, 0x02, b"\x01"), [("reading", "motion", False)]),
    ],
)
def test_mr60bha1_no_reading_values_make_nothing_and_a_breathing_pause_is_passed_on(
    frame: bytes, expected: list[tuple[str, str, object]]
) -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60bha1"), "bed-1")
    assert _summary(decoder.feed(frame, 1.0)) == expected
    assert decoder.rejected == Counter()


def test_mr60bha1_bad_bed_state_is_bad_value_and_next_frame_comes_through() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60bha1"), "bed-1")
    stream = encode_frame(0x84, 0x01, b"\x03") + bytes.fromhex(SIMULATOR["in_bed"])
    assert _summary(decoder.feed(stream, 1.0)) == [("reading", "occupancy", True)]
    assert decoder.rejected == Counter({"bad_value": 1})
