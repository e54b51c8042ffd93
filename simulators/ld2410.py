"""Byte-exact Hi-Link HLK-LD2410 report frames (reference section 3.1), for a
SerialPtySimulator. A real radar sends about 10 reports a second at 256000 baud.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from edge.decoders.ld2410 import BASIC, ENGINEERING, basic_fields, encode_frame

NONE: Final = 0x00
MOVING: Final = 0x01
STATIONARY: Final = 0x02
BOTH: Final = 0x03


def basic_report(
    target_state: int,
    moving_distance: int = 0,
    moving_energy: int = 0,
    static_distance: int = 0,
    static_energy: int = 0,
    detection_distance: int = 0,
) -> bytes:
    """A basic report (type 0x02): target state, distances (cm) and energies (0-100)."""
    fields = basic_fields(
        target_state,
        moving_distance,
        moving_energy,
        static_distance,
        static_energy,
        detection_distance,
    )
    return encode_frame(BASIC, fields)


def engineering_report(
    fields: bytes,
    moving_gates: Sequence[int],
    static_gates: Sequence[int],
    extra: bytes = b"",
) -> bytes:
    """An engineering report (type 0x01): `fields` from basic_fields, the energy of each gate
    (0..N), and `extra`: the light level and OUT pin of newer firmware, or nothing."""
    gates = bytes([len(moving_gates) - 1, len(static_gates) - 1])
    payload = fields + gates + bytes(moving_gates) + bytes(static_gates) + extra
    return encode_frame(ENGINEERING, payload)


FRAMES: Final[dict[str, bytes]] = {
    "nobody": basic_report(NONE),
    "moving": basic_report(MOVING, 120, 60, 0, 0, 120),
    "stationary": basic_report(STATIONARY, 81, 0, 0, 59, 0),
    "both": basic_report(BOTH, 79, 100, 76, 100, 50),
}
