"""What the serial protocols share: cutting a byte stream into frames, and decoding them.

A protocol supplies a StreamFramer (its header and how to cut one frame) and a FrameDecoder
(frame to observations); FramedSerialDecoder joins them into the agent's SerialDecoder. No I/O.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from typing import Final, Generic, Protocol, TypeVar

from contract.wire import Observation
from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.base import DecodeError
from edge.decoders.rules import Raw, apply_rule

STALE_PARTIAL_S: Final = 2.0  # a frame takes ~1 ms at 115200 baud; one this late never comes

FrameT = TypeVar("FrameT")
FrameT_contra = TypeVar("FrameT_contra", contravariant=True)

_LOG = logging.getLogger(__name__)


class StreamFramer(ABC, Generic[FrameT]):
    """Cuts a byte stream into frames; resynchronises on anything that is not a valid frame.

    Each rejection is counted in `rejected` by reason (garbage for bytes outside any frame, or
    the reason `_cut` gives) and logged. A frame split across feeds is kept until the rest
    arrives. Subclasses give the header every frame starts with and `_cut`.
    """

    def __init__(self, header: bytes, label: str) -> None:
        self.rejected: Counter[str] = Counter()
        self._header = header
        self._label = label
        self._buffer = bytearray()
        self._skipping = False  # inside bytes already counted as one rejection

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FrameT]:
        self._buffer += data
        frames: list[FrameT] = []
        while self._align():
            try:
                cut = self._cut(self._buffer)
            except DecodeError as exc:
                self._reject(exc.reason, exc.detail)
                del self._buffer[:1]
                continue
            if cut is None:
                break
            frame, size = cut
            del self._buffer[:size]
            frames.append(frame)
        return frames

    def drop_partial(self) -> list[FrameT]:
        """Give up on the incomplete frame held back (its rest never came), counted as
        "truncated", and frame what follows it."""
        if self._buffer:
            self._reject("truncated", f"{len(self._buffer)} byte(s) never completed a frame")
            del self._buffer[:1]
        return self.feed(b"")

    @abstractmethod
    def _cut(self, buffer: bytearray) -> tuple[FrameT, int] | None:
        """The frame at the start of `buffer` (which starts with the header) and its size in
        bytes; None while more bytes are needed. DecodeError if it is not a valid frame: its
        first byte is then dropped and the stream searched for the next header."""

    def _discard_leading(self, buffer: bytearray) -> int:
        """How many bytes at the start of `buffer` to drop silently (default none)."""
        return 0

    def _align(self) -> bool:
        """Drop bytes before the next header; False when no whole header is in the buffer."""
        del self._buffer[: self._discard_leading(self._buffer)]
        start = self._buffer.find(self._header)
        if start < 0:
            self._skip(len(self._buffer) - _partial_header(self._buffer, self._header))
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

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self._skipping = True
        log_rejection(self.rejected[reason], "%s: rejected %s: %s", self._label, reason, detail)


def _partial_header(buffer: bytearray, header: bytes) -> int:
    """The length of the longest end of `buffer` that could begin `header`."""
    for size in range(min(len(header) - 1, len(buffer)), 0, -1):
        if buffer.endswith(header[:size]):
            return size
    return 0


class FrameDecoder(Protocol[FrameT_contra]):
    """Frames of one device in, observations out; DecodeError for a frame it refuses."""

    device_id: str

    def decode(self, frame: FrameT_contra, at: float) -> list[Observation]: ...


class SourcedFrame(Protocol):
    @property
    def source(self) -> str:
        """The frame's kind as a profile rule names it in `source`."""


SourcedFrameT = TypeVar("SourcedFrameT", bound=SourcedFrame)


class SourceDecoder(ABC, Generic[SourcedFrameT]):
    """Turns frames into observations by the profile rules whose `source` is the frame's.

    Frames without a rule (heartbeats, waveforms, anything the profile does not use) are
    ignored and counted in `unmapped` by source. Subclasses read a rule's raw value.
    """

    def __init__(self, profile: DeviceProfile, device_id: str) -> None:
        self.device_id = device_id
        self.unmapped: Counter[str] = Counter()
        self._rules: dict[str, list[FieldRule]] = {}
        for rule in profile.rules:
            self._rules.setdefault(rule.source.upper(), []).append(rule)

    def decode(self, frame: SourcedFrameT, at: float) -> list[Observation]:
        rules = self._rules.get(frame.source)
        if rules is None:
            self.unmapped[frame.source] += 1
            return []
        observations = (
            apply_rule(rule, self._value(frame, rule), self.device_id, at) for rule in rules
        )
        return [obs for obs in observations if obs is not None]

    @abstractmethod
    def _value(self, frame: SourcedFrameT, rule: FieldRule) -> Raw:
        """The raw value `rule` reads from `frame`; DecodeError if the data does not fit."""


class FramedSerialDecoder(Generic[FrameT]):
    """Framer and decoder for one serial device: bytes in, observations out, never raising.

    A partial frame held for more than STALE_PARTIAL_S is given up, so a corrupted length
    field cannot hold back the frames behind it (a fall among them) until its bytes arrive.
    """

    def __init__(self, framer: StreamFramer[FrameT], decoder: FrameDecoder[FrameT]) -> None:
        self._framer = framer
        self._decoder = decoder
        self._partial_since: float | None = None
        self.rejected = framer.rejected
        # Every well-formed frame, mapped or not: a heartbeat proves the device is alive.
        self.frames = 0

    @property
    def pending(self) -> int:
        return self._framer.pending

    def feed(self, data: bytes, at: float) -> list[Observation]:
        frames = self._expire(at) + self._framer.feed(data)
        self.frames += len(frames)
        if not self._framer.pending:
            self._partial_since = None
        elif self._partial_since is None:
            self._partial_since = at
        return [obs for frame in frames for obs in self._decode(frame, at)]

    def _expire(self, at: float) -> list[FrameT]:
        if self._partial_since is None or at - self._partial_since <= STALE_PARTIAL_S:
            return []
        self._partial_since = None
        return self._framer.drop_partial()

    def _decode(self, frame: FrameT, at: float) -> list[Observation]:
        try:
            return self._decoder.decode(frame, at)
        except DecodeError as exc:
            self.rejected[exc.reason] += 1
            count = self.rejected[exc.reason]
            device = self._decoder.device_id
            log_rejection(count, "%s: rejected frame %s: %s", device, frame, exc)
            return []


def log_rejection(count: int, message: str, *args: object) -> None:
    """A warning the first time a reason is counted, debug after: a noisy line must not flood."""
    _LOG.log(logging.WARNING if count == 1 else logging.DEBUG, message, *args)
