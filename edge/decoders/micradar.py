"""The MicRadar `53 59` UART protocol (Seeed MR60FDA1/MR60BHA1): framing and decoding. No I/O.

Frame: header `53 59`, control word, command word, big-endian u16 data length, data, checksum
(low 8 bits of the sum of every byte from `53` to the last data byte), tail `54 43`. Frames are
cut by the length field, never by looking for the tail: `43` and `53` occur in data and
checksums (reference section 2A).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Final

from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.base import DecodeError
from edge.decoders.rules import apply_rule
from edge.wire import Observation

HEADER: Final = b"\x53\x59"
TAIL: Final = b"\x54\x43"
MAX_DATA: Final = 256
_PREFIX: Final = 6  # header, control, command, length
_SUFFIX: Final = 3  # checksum, tail
_MAX_VALUE_BYTES: Final = 4
STALE_PARTIAL_S: Final = 2.0  # a frame takes ~1 ms at 115200 baud; one this late never comes

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MicRadarFrame:
    ctrl: int
    cmd: int
    data: bytes

    @property
    def source(self) -> str:
        """The control/command pair as a profile rule names it, e.g. "83 01"."""
        return f"{self.ctrl:02X} {self.cmd:02X}"


def checksum(body: bytes | bytearray) -> int:
    """Low 8 bits of the sum of `body` (header through the last data byte)."""
    return sum(body) & 0xFF


def encode_frame(ctrl: int, cmd: int, data: bytes) -> bytes:
    """A complete frame with length, checksum and tail."""
    if len(data) > MAX_DATA:
        raise ValueError(f"{len(data)} data bytes is above the {MAX_DATA}-byte limit")
    body = HEADER + bytes([ctrl, cmd]) + len(data).to_bytes(2, "big") + data
    return body + bytes([checksum(body)]) + TAIL


class MicRadarFramer:
    """Cuts a byte stream into frames; resynchronises on anything that is not a valid frame.

    Each rejection is counted in `rejected` by reason (garbage, oversized, bad_checksum,
    bad_tail) and logged. A frame split across feeds is kept until the rest arrives.
    """

    def __init__(self, label: str = "micradar") -> None:
        self.rejected: Counter[str] = Counter()
        self._label = label
        self._buffer = bytearray()
        self._skipping = False  # inside bytes already counted as one rejection

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[MicRadarFrame]:
        self._buffer += data
        frames: list[MicRadarFrame] = []
        while self._align() and len(self._buffer) >= _PREFIX:
            length = int.from_bytes(self._buffer[4:6], "big")
            if length > MAX_DATA:
                self._drop_one("oversized", f"length field {length} above {MAX_DATA}")
                continue
            size = _PREFIX + length + _SUFFIX
            if len(self._buffer) < size:
                break
            frame = self._check(size)
            if frame is not None:
                frames.append(frame)
        return frames

    def drop_partial(self) -> list[MicRadarFrame]:
        """Give up on the incomplete frame held back (its rest never came), counted as
        "truncated", and frame what follows it."""
        if self._buffer:
            self._drop_one("truncated", f"{len(self._buffer)} byte(s) never completed a frame")
        return self.feed(b"")

    def _align(self) -> bool:
        """Drop bytes before the next header; False when no header can start in the buffer."""
        start = self._buffer.find(HEADER)
        if start < 0:
            keep = 1 if self._buffer.endswith(HEADER[:1]) else 0
            self._skip(len(self._buffer) - keep)
            return False
        self._skip(start)
        self._skipping = False
        return True

    def _skip(self, count: int) -> None:
        if count <= 0:
            return
        if not self._skipping:
            self._reject("garbage", f"{count} byte(s) outside any frame")
        del self._buffer[:count]

    def _check(self, size: int) -> MicRadarFrame | None:
        """The frame at the start of the buffer, or None (and one byte dropped) if invalid."""
        end = size - _SUFFIX
        expected = checksum(self._buffer[:end])
        if self._buffer[end] != expected:
            found = self._buffer[end]
            self._drop_one("bad_checksum", f"checksum {found:02X}, expected {expected:02X}")
            return None
        if self._buffer[end + 1 : size] != TAIL:
            self._drop_one("bad_tail", f"tail {self._buffer[end + 1 : size].hex(' ')}")
            return None
        frame = MicRadarFrame(self._buffer[2], self._buffer[3], bytes(self._buffer[_PREFIX:end]))
        del self._buffer[:size]
        return frame

    def _drop_one(self, reason: str, detail: str) -> None:
        self._reject(reason, detail)
        del self._buffer[:1]

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self._skipping = True
        _log_rejection(self.rejected[reason], "%s: rejected %s: %s", self._label, reason, detail)


class MicRadarDecoder:
    """Turns frames into observations by the profile's rules ("83 01" etc.).

    Frames without a rule (heartbeats, waveforms, anything the profile does not use) are
    ignored and counted in `unmapped` by source.
    """

    def __init__(self, profile: DeviceProfile, device_id: str) -> None:
        self.device_id = device_id
        self.unmapped: Counter[str] = Counter()
        self._rules: dict[str, list[FieldRule]] = {}
        for rule in profile.rules:
            self._rules.setdefault(rule.source.upper(), []).append(rule)

    def decode(self, frame: MicRadarFrame, at: float) -> list[Observation]:
        rules = self._rules.get(frame.source)
        if rules is None:
            self.unmapped[frame.source] += 1
            return []
        raw = _raw_value(frame)
        observations = (apply_rule(rule, raw, self.device_id, at) for rule in rules)
        return [obs for obs in observations if obs is not None]


def _raw_value(frame: MicRadarFrame) -> int:
    """A frame's data as one big-endian unsigned integer (1 to 4 bytes)."""
    if not 1 <= len(frame.data) <= _MAX_VALUE_BYTES:
        raise DecodeError("bad_length", f"{frame.source}: {len(frame.data)} data bytes")
    return int.from_bytes(frame.data, "big")


class MicRadarSerialDecoder:
    """Framer and decoder for one serial device: bytes in, observations out, never raising.

    A partial frame held for more than STALE_PARTIAL_S is given up, so a corrupted length
    field cannot hold back the frames behind it (a fall among them) until 265 bytes arrive.
    """

    def __init__(self, profile: DeviceProfile, device_id: str) -> None:
        self._framer = MicRadarFramer(label=device_id)
        self._decoder = MicRadarDecoder(profile, device_id)
        self._partial_since: float | None = None
        self.rejected = self._framer.rejected

    @property
    def pending(self) -> int:
        return self._framer.pending

    @property
    def unmapped(self) -> Counter[str]:
        return self._decoder.unmapped

    def feed(self, data: bytes, at: float) -> list[Observation]:
        frames = self._expire(at) + self._framer.feed(data)
        if not self._framer.pending:
            self._partial_since = None
        elif self._partial_since is None:
            self._partial_since = at
        return [obs for frame in frames for obs in self._decode(frame, at)]

    def _expire(self, at: float) -> list[MicRadarFrame]:
        if self._partial_since is None or at - self._partial_since <= STALE_PARTIAL_S:
            return []
        self._partial_since = None
        return self._framer.drop_partial()

    def _decode(self, frame: MicRadarFrame, at: float) -> list[Observation]:
        try:
            return self._decoder.decode(frame, at)
        except DecodeError as exc:
            self.rejected[exc.reason] += 1
            count = self.rejected[exc.reason]
            device = self._decoder.device_id
            _log_rejection(count, "%s: rejected frame %s: %s", device, frame.source, exc)
            return []


def _log_rejection(count: int, message: str, *args: object) -> None:
    """A warning the first time a reason is counted, debug after: a noisy line must not flood."""
    _LOG.log(logging.WARNING if count == 1 else logging.DEBUG, message, *args)
