"""Report by exception: a reading that only repeats itself is sent again now and then, not always.

An LD2410 says "someone is here" ten times a second; the hub needs to hear it when it changes,
and often enough to know the device is alive. A repeated value is therefore sent at most every
`min(60 s, half the device's supervision window)`. Events and safety readings (smoke, door)
always go through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from contract.wire import SAFETY_READINGS, Observation, Value

MAX_REPEAT_S: Final = 60.0


class RepeatFilter:
    def __init__(self, windows: dict[str, float], clock: Callable[[], float]) -> None:
        self._repeat_s = {
            device: min(MAX_REPEAT_S, window / 2) for device, window in windows.items()
        }
        self._clock = clock
        self._last: dict[tuple[str, str], tuple[Value, float]] = {}
        self.suppressed = 0

    def admit(self, observations: list[Observation]) -> list[Observation]:
        """The observations worth sending: events, changed readings, and due repeats."""
        admitted = [obs for obs in observations if self._worth_sending(obs)]
        self.suppressed += len(observations) - len(admitted)
        return admitted

    def _worth_sending(self, obs: Observation) -> bool:
        if obs.kind == "event" or obs.name in SAFETY_READINGS:
            return True
        key = (obs.device, obs.name)
        last = self._last.get(key)
        now = self._clock()
        repeat_s = self._repeat_s.get(obs.device, MAX_REPEAT_S)
        if last is not None and last[0] == obs.value and now - last[1] < repeat_s:
            return False
        self._last[key] = (obs.value, now)
        return True
