"""Byte-exact Seeed MR60BHA1 breathing/heart-rate radar frames (MicRadar `53 59`, reference
section 2A), for a SerialPtySimulator. Rates are sent every 3 s; in/out of bed in real-time mode.
"""

from __future__ import annotations

from typing import Final

from edge.decoders.micradar import encode_frame


def heart_rate(bpm: int) -> bytes:
    """85 02: heart rate, one byte."""
    return encode_frame(0x85, 0x02, bytes([bpm]))


def breathing_rate(per_minute: int) -> bytes:
    """81 02: breathing rate, one byte."""
    return encode_frame(0x81, 0x02, bytes([per_minute]))


FRAMES: Final[dict[str, bytes]] = {
    "in_bed": encode_frame(0x84, 0x01, b"\x01"),
    "out_of_bed": encode_frame(0x84, 0x01, b"\x00"),
    "bed_unknown": encode_frame(0x84, 0x01, b"\x02"),
    "heart_72": heart_rate(72),
    "breathing_16": breathing_rate(16),
    "present": encode_frame(0x80, 0x01, b"\x01"),
    "absent": encode_frame(0x80, 0x01, b"\x00"),
    "moving": encode_frame(0x80, 0x02, b"\x02"),
    "stationary": encode_frame(0x80, 0x02, b"\x01"),
    "heartbeat": encode_frame(0x01, 0x01, b"\x0f"),
}
