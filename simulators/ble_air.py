"""Send simulated BLE advertisements to the edge agent's simulated scanner backend.

The air is a Unix datagram socket; each datagram is one advert, encoded by
`edge.decoders.adstructures.encode_air_message` (JSON with address, rssi and the raw AD hex).
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType

from edge.decoders.adstructures import encode_air_message


class BLEAirSender:
    """Sends adverts to the simulated scanner listening at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, address: str, raw: bytes, rssi: int = -60) -> None:
        """Send one advert (raw advertising data) as if `address` had sent it."""
        self._socket.sendto(encode_air_message(address, rssi, raw), self.path)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> BLEAirSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
