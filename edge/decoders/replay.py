"""Refusing replays and repeats of BLE adverts: what the BTHome and Xiaomi decoders share.

An encrypted advert carries a counter that must increase (the libraries do not enforce it):
an identical resend of the last accepted advert is a repeat and yields nothing, any other
advert whose counter has not increased is a replay. A plaintext advert carries only a one-byte
packet id, which wraps: it is new if up to PACKET_ID_WINDOW - 1 ahead of the last one, or if
the last one is older than DUPLICATE_WINDOW_S (as bthome-ble does).
"""

from __future__ import annotations

from typing import Final

from edge.decoders.base import DecodeError

DUPLICATE_WINDOW_S: Final = 4.0
PACKET_ID_WINDOW: Final = 64


class CounterGuard:
    """The last accepted encryption counter of one device, and the advert that carried it."""

    def __init__(self) -> None:
        self._last: tuple[int, bytes] | None = None

    def is_repeat(self, counter: int, data: bytes) -> bool:
        """True for a resend of the last accepted advert; DecodeError("replay") for an old
        counter."""
        if self._last is None:
            return False
        last, last_data = self._last
        if data == last_data:
            return True
        if counter <= last:
            raise DecodeError("replay", f"counter {counter} after {last}")
        return False

    def accept(self, decrypted: bool, counter: int, data: bytes) -> None:
        """Record an advert that decrypted; DecodeError if it did not: "decrypt_failed" once the
        key has worked, "bad_key" before."""
        if not decrypted:
            if self._last is not None:
                raise DecodeError("decrypt_failed", "message integrity check failed")
            raise DecodeError("bad_key", "does not decrypt with the configured key")
        self._last = (counter, data)


class PacketIdWindow:
    """The last packet id of one plaintext device and when it came."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def is_old(self, packet_id: int, at: float) -> bool:
        """True for a packet id already seen (a repeat or an older advert); else remember it."""
        last = self._last
        if last is not None and at - last[1] <= DUPLICATE_WINDOW_S:
            ahead = (packet_id - last[0]) % 256
            if not 0 < ahead < PACKET_ID_WINDOW:
                return True
        self._last = (packet_id, at)
        return False
