"""Hi-Link TinyFrame (Seeed MR60FDA2/MR60BHA2, HLK-LD6002): framing and decoding. No I/O.

Frame (reference section 2B): SOF `01`, ID u16 BE, LEN u16 BE, TYPE u16 BE, HEAD_CKSUM =
~XOR(SOF..TYPE), LEN data bytes (little-endian fields, IEEE-754 LE floats), DATA_CKSUM =
~XOR(data). DATA_CKSUM is omitted when LEN is 0 (ESPHome and the Seeed library). The LD6002
transcription shows `FF` there instead: a lone `FF` right after an empty frame is taken as
that checksum and dropped silently. This is unambiguous, as a frame never starts with `FF`.

The header checksum is checked before the length is trusted, so a stray `01` in the data
costs one byte of resynchronisation, not a wait for a bogus length. Type numbers mean
different things on different application firmware: each profile carries its own table.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Final

from device_profiles.schema import DeviceProfile, FieldRule, ValueFormat
from edge.decoders.base import DecodeError
from edge.decoders.framing import FramedSerialDecoder, SourceDecoder, StreamFramer
from edge.decoders.rules import Raw

SOF: Final = b"\x01"
HEAD_SIZE: Final = 8  # SOF, ID, LEN, TYPE, HEAD_CKSUM
MAX_DATA: Final = 1024  # the TinyFrame reference's limit
EMPTY_DATA_CKSUM: Final = 0xFF  # ~XOR of no bytes: the LD6002 form of an empty frame
FORMATS: Final[dict[ValueFormat, struct.Struct]] = {
    "u8": struct.Struct("<B"),
    "u16": struct.Struct("<H"),
    "u32": struct.Struct("<I"),
    "i8": struct.Struct("<b"),
    "i16": struct.Struct("<h"),
    "i32": struct.Struct("<i"),
    "f32": struct.Struct("<f"),
}
F32_DIGITS: Final = 7  # significant digits a 32-bit float carries


@dataclass(frozen=True, slots=True)
class TinyFrame:
    frame_id: int
    type: int
    data: bytes

    @property
    def source(self) -> str:
        """The message type as a profile rule names it, e.g. "0E02"."""
        return f"{self.type:04X}"


def checksum(data: bytes | bytearray) -> int:
    """~(XOR of `data`), as both TinyFrame checksums are computed."""
    return ~reduce(xor, data, 0) & 0xFF


def encode_frame(frame_id: int, frame_type: int, data: bytes) -> bytes:
    """A complete frame with both checksums (no data checksum when `data` is empty)."""
    if len(data) > MAX_DATA:
        raise ValueError(f"{len(data)} data bytes is above the {MAX_DATA}-byte limit")
    head = SOF + struct.pack(">HHH", frame_id, len(data), frame_type)
    frame = head + bytes([checksum(head)])
    return frame + data + bytes([checksum(data)]) if data else frame


class TinyFrameFramer(StreamFramer[TinyFrame]):
    """Cuts a TinyFrame byte stream into frames (see StreamFramer). Rejections: garbage,
    bad_head_checksum, oversized, bad_checksum, truncated."""

    def __init__(self, label: str = "tinyframe") -> None:
        super().__init__(SOF, label)
        self._after_empty = False

    def _cut(self, buffer: bytearray) -> tuple[TinyFrame, int] | None:
        if len(buffer) < HEAD_SIZE:
            return None
        expected = checksum(buffer[: HEAD_SIZE - 1])
        if buffer[HEAD_SIZE - 1] != expected:
            found = buffer[HEAD_SIZE - 1]
            raise DecodeError("bad_head_checksum", f"{found:02X}, expected {expected:02X}")
        frame_id, length, frame_type = struct.unpack_from(">HHH", buffer, 1)
        if length > MAX_DATA:
            raise DecodeError("oversized", f"length field {length} above {MAX_DATA}")
        size = HEAD_SIZE + length + (1 if length else 0)
        if len(buffer) < size:
            return None
        data = bytes(buffer[HEAD_SIZE : HEAD_SIZE + length])
        if length and buffer[size - 1] != checksum(data):
            found, wanted = buffer[size - 1], checksum(data)
            raise DecodeError("bad_checksum", f"data checksum {found:02X}, expected {wanted:02X}")
        self._after_empty = not length
        return TinyFrame(frame_id, frame_type, data), size

    def _discard_leading(self, buffer: bytearray) -> int:
        if not (self._after_empty and buffer):
            return 0
        self._after_empty = False
        return 1 if buffer[0] == EMPTY_DATA_CKSUM else 0


class TinyFrameDecoder(SourceDecoder[TinyFrame]):
    """Turns frames into observations by the profile's rules ("0E02" etc.); each rule's
    `format` says how to read the frame's data, which must be exactly that long."""

    def _value(self, frame: TinyFrame, rule: FieldRule) -> Raw:
        assert rule.format is not None  # the profile schema requires it for tinyframe
        layout = FORMATS[rule.format]
        if len(frame.data) != layout.size:
            detail = f"{frame.source}: {len(frame.data)} data bytes for {rule.format}"
            raise DecodeError("bad_length", detail)
        (value,) = layout.unpack(frame.data)
        if not isinstance(value, float):
            return int(value)
        if not math.isfinite(value):
            raise DecodeError("bad_value", f"{frame.source}: {value} is not a number")
        return float(f"{value:.{F32_DIGITS}g}")


def make_tinyframe_decoder(
    profile: DeviceProfile, device_id: str
) -> FramedSerialDecoder[TinyFrame]:
    return FramedSerialDecoder(TinyFrameFramer(device_id), TinyFrameDecoder(profile, device_id))
