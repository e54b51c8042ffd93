"""A byte-exact Seeed MR60FDA1 fall radar behind a pseudo-terminal.

Frames are the MicRadar `53 59` frames of reference section 2A; fall and stay-still frames are
sent on change only, so send them once per change, not every second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from edge.decoders.micradar import encode_frame
from simulators.serial_pty import SerialPtySimulator

FRAMES: Final[dict[str, bytes]] = {
    "fall": encode_frame(0x83, 0x01, b"\x01"),
    "fall_cleared": encode_frame(0x83, 0x01, b"\x00"),
    "stillness": encode_frame(0x83, 0x05, b"\x01"),
    "stillness_cleared": encode_frame(0x83, 0x05, b"\x00"),
    "present": encode_frame(0x80, 0x01, b"\x01"),
    "absent": encode_frame(0x80, 0x01, b"\x00"),
    "moving": encode_frame(0x80, 0x02, b"\x02"),
    "stationary": encode_frame(0x80, 0x02, b"\x01"),
    "heartbeat": encode_frame(0x01, 0x01, b"\x0f"),
}


class MR60FDA1Simulator(SerialPtySimulator):
    """The MR60FDA1's UART behind a pseudo-terminal (see SerialPtySimulator)."""

    def __init__(self, link: str | Path | None = None) -> None:
        super().__init__(FRAMES, link)
