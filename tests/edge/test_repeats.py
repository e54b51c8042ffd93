"""Report by exception: repeats are thinned, changes, events and safety readings always go."""

from __future__ import annotations

from contract.wire import Observation, Value
from edge.repeats import MAX_REPEAT_S, RepeatFilter
from tests.support.clock import FakeClock


def reading(name: str, value: Value, device: str = "ld2410-bath") -> Observation:
    return Observation(device, 0.0, "reading", name, value)


def test_a_repeated_value_is_sent_again_only_after_half_the_supervision_window() -> None:
    clock = FakeClock(1000.0)
    repeats = RepeatFilter({"ld2410-bath": 30.0}, clock)
    assert repeats.admit([reading("presence", True)]) == [reading("presence", True)]
    for _ in range(100):  # ten seconds of an LD2410 at 10 reports a second
        clock.advance(0.1)
        assert repeats.admit([reading("presence", True)]) == []
    clock.advance(5.1)  # 15 s since the last one sent: half of the 30 s window
    assert repeats.admit([reading("presence", True)]) == [reading("presence", True)]
    assert repeats.suppressed == 100


def test_a_change_goes_at_once() -> None:
    clock = FakeClock(1000.0)
    repeats = RepeatFilter({"ld2410-bath": 30.0}, clock)
    repeats.admit([reading("presence", True)])
    assert repeats.admit([reading("presence", False)]) == [reading("presence", False)]


def test_events_and_safety_readings_are_never_thinned() -> None:
    clock = FakeClock(1000.0)
    repeats = RepeatFilter({"smoke-1": 90000.0, "radar-1": 60.0}, clock)
    fall = Observation("radar-1", 0.0, "event", "fall", True)
    smoke = reading("smoke", True, device="smoke-1")
    for _ in range(3):
        assert repeats.admit([fall, smoke]) == [fall, smoke]


def test_a_device_with_a_long_window_still_repeats_every_minute() -> None:
    clock = FakeClock(1000.0)
    repeats = RepeatFilter({"button-1": 90000.0}, clock)
    repeats.admit([reading("battery", 80, device="button-1")])
    clock.advance(MAX_REPEAT_S - 1)
    assert repeats.admit([reading("battery", 80, device="button-1")]) == []
    clock.advance(1)
    assert len(repeats.admit([reading("battery", 80, device="button-1")])) == 1
