from collections import Counter

import pytest

from contract.wire import Observation
from device_profiles import load_profile
from edge.decoders.ld2410 import LD2410Framer, LD2410Report, basic_fields, encode_frame
from edge.decoders.registry import make_serial_decoder

# Reference section 3.1.
SPEC_BASIC = "F4 F3 F2 F1 0D 00 02 AA 02 51 00 00 00 00 3B 00 00 55 00 F8 F7 F6 F5"
CAPTURE_BASIC = "f4 f3 f2 f1 0d 00 02 aa 03 4f 00 64 4c 00 64 32 00 55 00 f8 f7 f6 f5"
SPEC_ENGINEERING = (
    "F4 F3 F2 F1 23 00 01 AA 03 1E 00 3C 00 00 39 00 00 08 08 3C 22 05 03 03 04 03 06 05"
    " 00 00 39 10 13 06 06 08 04 03 05 55 00 F8 F7 F6 F5"
)
# aio-ld2410's test: the same frame with the last two data bytes 60 01 (light 0x60, OUT 1).
AIO_ENGINEERING = SPEC_ENGINEERING.replace("04 03 05 55 00", "04 60 01 55 00")
STATIONARY = bytes.fromhex(SPEC_BASIC)
BOTH = bytes.fromhex(CAPTURE_BASIC)
NOBODY = encode_frame(0x02, basic_fields(0))


def _summary(observations: list[Observation]) -> list[tuple[str, object]]:
    return [(obs.name, obs.value) for obs in observations]


@pytest.mark.parametrize(
    ("text", "report_type", "fields"),
    [
        (SPEC_BASIC, 0x02, (2, 81, 0, 0, 59, 0)),
        (CAPTURE_BASIC, 0x02, (3, 79, 100, 76, 100, 50)),
        (SPEC_ENGINEERING, 0x01, (3, 30, 60, 0, 57, 0)),
        (AIO_ENGINEERING, 0x01, (3, 30, 60, 0, 57, 0)),
    ],
)
def test_reference_frames_are_framed(text: str, report_type: int, fields: tuple[int, ...]) -> None:
    framer = LD2410Framer()
    reports = framer.feed(bytes.fromhex(text))
    assert reports == [
        LD2410Report(
            report_type,
            dict(
                zip(
                    (
                        "target_state",
                        "moving_distance",
                        "moving_energy",
                        "static_distance",
                        "static_energy",
                        "detection_distance",
                    ),
                    fields,
                    strict=True,
                )
            ),
        )
    ]
    assert (framer.rejected, framer.pending) == (Counter(), 0)


def test_basic_frame_reencodes_byte_exact() -> None:
    assert encode_frame(0x02, basic_fields(2, 81, 0, 0, 59, 0)) == STATIONARY


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (NOBODY, [("presence", False), ("motion", False)]),
        (encode_frame(0x02, basic_fields(1, 120, 50)), [("presence", True), ("motion", True)]),
        (STATIONARY, [("presence", True), ("motion", False)]),
        (BOTH, [("presence", True), ("motion", True)]),
        (bytes.fromhex(SPEC_ENGINEERING), [("presence", True), ("motion", True)]),
    ],
)
def test_target_state_maps_to_presence_and_motion(
    frame: bytes, expected: list[tuple[str, object]]
) -> None:
    decoder = make_serial_decoder(load_profile("hlk-ld2410"), "room-1")
    observations = decoder.feed(frame, 5.0)
    assert _summary(observations) == expected
    assert all(obs.kind == "reading" and obs.at == 5.0 for obs in observations)


def test_every_report_makes_readings_no_rate_limit() -> None:
    decoder = make_serial_decoder(load_profile("hlk-ld2410"), "room-1")
    assert len(decoder.feed(STATIONARY * 10, 1.0)) == 20


def test_unknown_target_state_is_bad_value_and_next_report_comes_through() -> None:
    decoder = make_serial_decoder(load_profile("hlk-ld2410"), "room-1")
    observations = decoder.feed(encode_frame(0x02, basic_fields(4)) + NOBODY, 1.0)
    assert _summary(observations) == [("presence", False), ("motion", False)]
    assert decoder.rejected == Counter({"bad_value": 1})


def _corrupt(index: int, value: int) -> bytes:
    frame = bytearray(STATIONARY)
    frame[index] = value
    return bytes(frame)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_corrupt(-1, 0xF4), "bad_footer"),
        (_corrupt(6, 0x03), "bad_type"),
        (_corrupt(7, 0xAB), "bad_head"),
        (_corrupt(-6, 0x56), "bad_tail"),
        (_corrupt(-5, 0x01), "bad_tail"),
        # a basic report must be 13 bytes: one more gate byte and the length says 14
        (
            bytes.fromhex("F4F3F2F1 0E00 02AA")
            + basic_fields(2)
            + bytes.fromhex("00 5500")
            + bytes.fromhex("F8F7F6F5"),
            "bad_length",
        ),
        # an engineering report whose gate counts do not fit its length
        (
            encode_frame(0x01, basic_fields(1) + bytes([8, 8]) + bytes(9)),
            "bad_length",
        ),
    ],
)
def test_malformed_frame_is_rejected_and_next_report_comes_through(bad: bytes, reason: str) -> None:
    framer = LD2410Framer()
    reports = framer.feed(bad + BOTH)
    assert [report.fields["target_state"] for report in reports] == [3]
    assert framer.rejected[reason] == 1
    assert set(framer.rejected) <= {reason, "garbage"}


def test_oversized_length_is_rejected_and_next_report_comes_through() -> None:
    framer = LD2410Framer()
    reports = framer.feed(bytes.fromhex("F4 F3 F2 F1 00 01 02 AA") + BOTH)
    assert [report.fields["target_state"] for report in reports] == [3]
    assert framer.rejected == Counter({"oversized": 1})


def test_garbage_and_command_acks_between_reports_are_counted_once_per_run() -> None:
    ack = bytes.fromhex("FD FC FB FA 04 00 FF 01 00 00 04 03 02 01")
    framer = LD2410Framer()
    reports = framer.feed(b"\xf4\xf3" + STATIONARY + ack + b"\xf4\xf3\xf2" + BOTH)
    assert [report.fields["target_state"] for report in reports] == [2, 3]
    assert framer.rejected == Counter({"garbage": 2})


def test_truncated_report_is_completed_by_the_next_feed() -> None:
    framer = LD2410Framer()
    assert framer.feed(STATIONARY[:3]) == []  # a partial header is kept
    assert framer.feed(STATIONARY[3:10]) == []
    assert framer.pending == 10
    assert len(framer.feed(STATIONARY[10:])) == 1
    assert (framer.rejected, framer.pending) == (Counter(), 0)


def test_stale_truncated_report_is_given_up() -> None:
    decoder = make_serial_decoder(load_profile("hlk-ld2410"), "room-1")
    assert decoder.feed(STATIONARY[:12], at=0.0) == []
    assert _summary(decoder.feed(NOBODY, at=2.5)) == [("presence", False), ("motion", False)]
    assert decoder.rejected == Counter({"truncated": 1})


def test_byte_at_a_time_gives_the_same_reports_and_counts() -> None:
    stream = b"\x00" + STATIONARY + _corrupt(7, 0) + bytes.fromhex(AIO_ENGINEERING) + BOTH
    whole = LD2410Framer()
    expected = whole.feed(stream)
    single = LD2410Framer()
    reports = [report for byte in stream for report in single.feed(bytes([byte]))]
    assert [report.fields["target_state"] for report in expected] == [2, 3, 3]
    assert reports == expected
    assert single.rejected == whole.rejected == Counter({"garbage": 1, "bad_head": 1})
