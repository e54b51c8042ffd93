"""Byte-exact Hi-Link TinyFrame frames of the Seeed MR60FDA2 and MR60BHA2 radars (reference
section 2B), for a SerialPtySimulator. Each frame carries a frame id; the named frames use the
ids of the reference's simulator table. Fall frames are sent on change.
"""

from __future__ import annotations

import struct
from typing import Final

from edge.decoders.tinyframe import encode_frame

FALL: Final = 0x0E02
PRESENCE: Final = 0x0F09
BREATHING: Final = 0x0A14
HEART_RATE: Final = 0x0A15
DISTANCE: Final = 0x0A16


def fall(frame_id: int, detected: bool) -> bytes:
    """0x0E02 is_fall: 1 fall, 0 normal (MR60FDA2)."""
    return encode_frame(frame_id, FALL, bytes([int(detected)]))


def presence(frame_id: int, present: bool) -> bytes:
    """0x0F09 human present: 1 / 0 (MR60FDA2 and MR60BHA2)."""
    return encode_frame(frame_id, PRESENCE, bytes([int(present)]))


def breathing(frame_id: int, per_minute: float) -> bytes:
    """0x0A14 breathing rate, f32 LE; 0.0 means no reading (MR60BHA2)."""
    return encode_frame(frame_id, BREATHING, struct.pack("<f", per_minute))


def heart_rate(frame_id: int, bpm: float) -> bytes:
    """0x0A15 heart rate, f32 LE; 0.0 means no reading (MR60BHA2)."""
    return encode_frame(frame_id, HEART_RATE, struct.pack("<f", bpm))


def distance(frame_id: int, flag: int, range_cm: float) -> bytes:
    """0x0A16 range flag u32 LE and range f32 LE (MR60BHA2; not mapped by its profile)."""
    return encode_frame(frame_id, DISTANCE, struct.pack("<If", flag, range_cm))


FDA2_FRAMES: Final[dict[str, bytes]] = {
    "fall": fall(1, True),
    "fall_cleared": fall(2, False),
    "present": presence(3, True),
    "absent": presence(3, False),
}
BHA2_FRAMES: Final[dict[str, bytes]] = {
    "present": presence(3, True),
    "absent": presence(3, False),
    "breathing_15": breathing(4, 15.0),
    "heart_72": heart_rate(5, 72.0),
    "no_breathing_reading": breathing(4, 0.0),
    "no_heart_reading": heart_rate(5, 0.0),
    "distance": distance(6, 1, 0.5),
}
