"""What the MQTT link reports to the watch when another client keeps taking the hub's broker
session (the `hub_takeover` rule in hub/watch/rules.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Takeovers:
    """The broker dropped the hub's session soon after accepting it `drops` times within
    `window_s` seconds, the last at `at` (the hub's clock)."""

    drops: int
    window_s: float
    at: float
    client_id: str
