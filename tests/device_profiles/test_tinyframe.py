import struct
from collections import Counter

import pytest

from contract.wire import Observation
from device_profiles import load_profile
from edge.decoders.base import DecodeError
from edge.decoders.registry import make_serial_decoder
from edge.decoders.tinyframe import (
    TinyFrame,
    TinyFrameDecoder,
    TinyFrameFramer,
    checksum,
    encode_frame,
)

# Reference section 2B: vendor examples, real MR60BHA2 captures, simulator frames.
VENDOR = [
    "01 00 00 00 01 0E 02 F3 01 FE",  # fall report
    "01 00 00 00 04 0E 04 F0 00 00 20 40 9F",  # set height 2.5 m
    "01 00 00 00 00 0E 06 F6",  # query parameters (no data checksum)
    "01 00 00 00 00 21 10 CF",  # reset, ESPHome form
]
CAPTURES = {
    "heart_0": "01 69 75 00 04 0A 15 F9 00 00 00 00 FF",
    "breathing_0": "01 3A 33 00 04 0A 14 ED 00 00 00 00 FF",
}
SIMULATOR = {
    "fall": "01 00 01 00 01 0E 02 F2 01 FE",
    "fall_cleared": "01 00 02 00 01 0E 02 F1 00 FF",
    "present": "01 00 03 00 01 0F 09 FA 01 FE",
    "breathing_15": "01 00 04 00 04 0A 14 E0 00 00 70 41 CE",
    "heart_72": "01 00 05 00 04 0A 15 E0 00 00 90 42 2D",
    "distance": "01 00 06 00 08 0A 16 EC 01 00 00 00 00 00 00 3F C1",
}
FALL = bytes.fromhex(SIMULATOR["fall"])
PRESENT = bytes.fromhex(SIMULATOR["present"])


def _summary(observations: list[Observation]) -> list[tuple[str, str, object]]:
    return [(obs.kind, obs.name, obs.value) for obs in observations]


def _frame(text: str) -> bytes:
    return bytes.fromhex(text)


def _assert_rejected_once(rejected: Counter[str], reason: str) -> None:
    """`reason` once; the rest of the bad frame's bytes only as garbage or false headers."""
    assert rejected[reason] == 1
    assert set(rejected) <= {reason, "garbage", "bad_head_checksum"}


@pytest.mark.parametrize("text", VENDOR + list(CAPTURES.values()) + list(SIMULATOR.values()))
def test_reference_frame_is_framed_and_reencoded(text: str) -> None:
    raw = _frame(text)
    framer = TinyFrameFramer()
    frames = framer.feed(raw)
    assert len(frames) == 1
    frame = frames[0]
    assert frame.type == int.from_bytes(raw[5:7], "big")
    assert encode_frame(frame.frame_id, frame.type, frame.data) == raw
    assert (framer.rejected, framer.pending) == (Counter(), 0)


def test_threshold_example_data_checksum() -> None:
    assert checksum(bytes.fromhex("9A 99 19 3F")) == 0xDA


def test_ld6002c_errata_header_checksum_is_ec() -> None:
    # The reference notes the transcription's 0x0E0C example shows 68; the right value is EC.
    frame = encode_frame(0, 0x0E0C, bytes(16))
    assert frame[7] == 0xEC


@pytest.mark.parametrize(
    ("model", "name", "expected"),
    [
        ("seeed-mr60fda2", "fall", [("event", "fall", True)]),
        ("seeed-mr60fda2", "fall_cleared", [("event", "fall", False)]),
        ("seeed-mr60fda2", "present", [("reading", "presence", True)]),
        ("seeed-mr60bha2", "present", [("reading", "presence", True)]),
        ("seeed-mr60bha2", "breathing_15", [("reading", "respiration_rate", 15.0)]),
        ("seeed-mr60bha2", "heart_72", [("reading", "heart_rate", 72.0)]),
        ("seeed-mr60bha2", "distance", []),  # not mapped
        ("seeed-mr60fda2", "heart_72", []),  # the FDA2 table has no 0x0A15
    ],
)
def test_simulator_frames_decode_by_profile(
    model: str, name: str, expected: list[tuple[str, str, object]]
) -> None:
    decoder = make_serial_decoder(load_profile(model), "radar-1")
    observations = decoder.feed(_frame(SIMULATOR[name]), at=100.0)
    assert _summary(observations) == expected
    assert all(obs.device == "radar-1" and obs.at == 100.0 for obs in observations)
    assert decoder.rejected == Counter()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("heart_0", []), ("breathing_0", [("reading", "respiration_rate", 0.0)])],
)
def test_a_zero_heart_rate_makes_nothing_and_a_zero_breathing_rate_is_passed_on(
    name: str, expected: list[tuple[str, str, object]]
) -> None:
    """From real captures: 0 bpm is no reading; 0 breaths/min is for the hub to judge."""
    decoder = make_serial_decoder(load_profile("seeed-mr60bha2"), "bed-1")
    assert _summary(decoder.feed(_frame(CAPTURES[name]), 1.0)) == expected
    assert decoder.rejected == Counter()


def test_vendor_fall_report_decodes_as_a_fall() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda2"), "radar-1")
    assert _summary(decoder.feed(_frame(VENDOR[0]), 1.0)) == [("event", "fall", True)]


def test_f32_rates_keep_float_precision_without_noise() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60bha2"), "bed-1")
    frame = encode_frame(9, 0x0A15, struct.pack("<f", 67.3))
    assert _summary(decoder.feed(frame, 1.0)) == [("reading", "heart_rate", 67.3)]


def test_unmapped_types_are_counted() -> None:
    decoder = TinyFrameDecoder(load_profile("seeed-mr60fda2"), "radar-1")
    for text in (VENDOR[2], SIMULATOR["distance"], VENDOR[2]):
        assert decoder.decode(TinyFrameFramer().feed(_frame(text))[0], 1.0) == []
    assert decoder.unmapped == Counter({"0E06": 2, "0A16": 1})


def test_empty_frame_in_ld6002_form_with_ff_is_accepted_silently() -> None:
    framer = TinyFrameFramer()
    frames = framer.feed(_frame(VENDOR[3]) + b"\xff" + FALL)
    assert [frame.source for frame in frames] == ["2110", "0E02"]
    assert framer.rejected == Counter()


def test_ld6002_ff_arriving_in_a_later_feed_is_still_the_checksum() -> None:
    framer = TinyFrameFramer()
    assert [frame.data for frame in framer.feed(_frame(VENDOR[2]))] == [b""]
    assert framer.feed(b"\xff") == []
    assert framer.feed(PRESENT) == [TinyFrame(3, 0x0F09, b"\x01")]
    assert (framer.rejected, framer.pending) == (Counter(), 0)


def test_ff_not_after_an_empty_frame_is_garbage() -> None:
    framer = TinyFrameFramer()
    frames = framer.feed(FALL + b"\xff" + PRESENT)
    assert [frame.source for frame in frames] == ["0E02", "0F09"]
    assert framer.rejected == Counter({"garbage": 1})


def test_bad_data_checksum_is_counted_and_neighbours_come_through() -> None:
    bad = bytearray(FALL)
    bad[-1] ^= 0xFF
    framer = TinyFrameFramer()
    frames = framer.feed(PRESENT + bytes(bad) + FALL)
    assert [frame.source for frame in frames] == ["0F09", "0E02"]
    _assert_rejected_once(framer.rejected, "bad_checksum")


def test_bad_head_checksum_is_counted_and_resyncs() -> None:
    bad = bytearray(FALL)
    bad[7] ^= 0x01
    framer = TinyFrameFramer()
    frames = framer.feed(bytes(bad) + PRESENT)
    assert [frame.source for frame in frames] == ["0F09"]
    assert framer.rejected["bad_head_checksum"] >= 1
    assert set(framer.rejected) <= {"bad_head_checksum", "garbage"}


def test_garbage_with_sof_bytes_between_frames() -> None:
    framer = TinyFrameFramer()
    garbage = bytes.fromhex("00 01 02 03 01 01 01 01 01 01 01 01 55")
    frames = framer.feed(FALL + garbage + PRESENT)
    assert [frame.source for frame in frames] == ["0E02", "0F09"]
    assert framer.rejected["garbage"] >= 1
    assert set(framer.rejected) <= {"garbage", "bad_head_checksum"}


def test_oversized_length_with_a_valid_header_checksum_is_rejected() -> None:
    head = bytes.fromhex("01 00 07 04 01 0E 02")  # LEN 1025
    oversized = head + bytes([checksum(head)])
    framer = TinyFrameFramer()
    frames = framer.feed(oversized + FALL)
    assert [frame.source for frame in frames] == ["0E02"]
    _assert_rejected_once(framer.rejected, "oversized")


def test_truncated_frame_is_completed_by_the_next_feed() -> None:
    framer = TinyFrameFramer()
    assert framer.feed(FALL[:6]) == []
    assert framer.pending == 6
    assert framer.feed(FALL[6:]) == [TinyFrame(1, 0x0E02, b"\x01")]
    assert framer.rejected == Counter()


def test_stale_truncated_frame_is_given_up_so_a_fall_behind_it_comes_through() -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda2"), "radar-1")
    head = bytes.fromhex("01 00 09 00 C8 0F 09")  # claims 200 data bytes
    assert decoder.feed(head + bytes([checksum(head)]), at=0.0) == []
    assert decoder.feed(FALL, at=0.5) == []
    assert _summary(decoder.feed(b"", at=3.0)) == [("event", "fall", True)]
    assert decoder.rejected["truncated"] == 1
    assert decoder.pending == 0


def test_byte_at_a_time_gives_the_same_frames_and_counts() -> None:
    bad = bytearray(PRESENT)
    bad[-1] ^= 0x01
    stream = (
        b"\x11\x22"
        + FALL
        + bytes(bad)
        + _frame(VENDOR[2])
        + b"\xff"
        + _frame(SIMULATOR["heart_72"])
        + b"\x01\x01\x00"
        + PRESENT
    )
    whole = TinyFrameFramer()
    expected = whole.feed(stream)
    single = TinyFrameFramer()
    frames = [frame for byte in stream for frame in single.feed(bytes([byte]))]
    assert [frame.source for frame in expected] == ["0E02", "0E06", "0A15", "0F09"]
    assert frames == expected
    assert single.rejected == whole.rejected


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (encode_frame(1, 0x0E02, b"\x07"), "bad_value"),  # fall is 0 or 1
        (encode_frame(1, 0x0E02, b"\x01\x00"), "bad_length"),  # u8 in two bytes
        (encode_frame(1, 0x0F09, b""), "bad_length"),  # an acknowledgement, not a report
    ],
)
def test_bad_values_are_counted_and_the_next_frame_comes_through(frame: bytes, reason: str) -> None:
    decoder = make_serial_decoder(load_profile("seeed-mr60fda2"), "radar-1")
    assert _summary(decoder.feed(frame + FALL, 1.0)) == [("event", "fall", True)]
    assert decoder.rejected == Counter({reason: 1})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_rate_is_bad_value(value: float) -> None:
    decoder = TinyFrameDecoder(load_profile("seeed-mr60bha2"), "bed-1")
    frame = TinyFrame(1, 0x0A14, struct.pack("<f", value))
    with pytest.raises(DecodeError) as caught:
        decoder.decode(frame, 1.0)
    assert caught.value.reason == "bad_value"


def test_encode_frame_refuses_oversized_data() -> None:
    with pytest.raises(ValueError, match="1024"):
        encode_frame(1, 0x0A08, bytes(1025))
