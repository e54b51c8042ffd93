"""A serial device behind a pseudo-terminal, for every serial simulator.

The edge agent opens `.port` exactly as it would open /dev/ttyUSB0 (the baud rate is not
enforced by a pty). The slave side stays open here so the port does not hang up when a reader
closes and reopens it. `link`, if given, is a symlink to the port (e.g. /tmp/ttyRADAR0).
"""

from __future__ import annotations

import os
import tty
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self


class SerialPtySimulator:
    """A pseudo-terminal whose far end reads like the device's UART; `frames` names the
    frames `send` accepts by name."""

    def __init__(self, frames: Mapping[str, bytes], link: str | Path | None = None) -> None:
        self.frames = frames
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.link = Path(link) if link is not None else None
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self.port)

    def send(self, frame: str | bytes) -> None:
        """Write a frame by name (see `frames`) or raw bytes to the port."""
        data = self.frames[frame] if isinstance(frame, str) else frame
        os.write(self._master, data)

    def close(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        os.close(self._slave)
        os.close(self._master)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
