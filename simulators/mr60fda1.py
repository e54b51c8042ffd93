"""A byte-exact Seeed MR60FDA1 fall radar behind a pseudo-terminal.

The edge agent opens `.port` exactly as it would open /dev/ttyUSB0. Frames are the MicRadar
`53 59` frames of reference section 2A; fall and stay-still frames are sent on change only,
so send them once per change, not every second.
"""

from __future__ import annotations

import os
import tty
from pathlib import Path
from types import TracebackType
from typing import Final

from edge.decoders.micradar import encode_frame

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


class MR60FDA1Simulator:
    """A pseudo-terminal whose far end reads like the radar's UART.

    The slave side stays open here so the port does not hang up when a reader closes and
    reopens it. `link`, if given, is a symlink to the port (e.g. /tmp/ttyRADAR0).
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.link = Path(link) if link is not None else None
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self.port)

    def send(self, frame: str | bytes) -> None:
        """Write a frame by name (see FRAMES) or raw bytes to the port."""
        data = FRAMES[frame] if isinstance(frame, str) else frame
        os.write(self._master, data)

    def close(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        os.close(self._slave)
        os.close(self._master)

    def __enter__(self) -> MR60FDA1Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
