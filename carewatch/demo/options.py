"""What the person running the demo chose (where it listens, for how long, where its data and
log go), and when its scripted night begins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOG_FILE: Final = "demo.log"
# The scripted night starts when someone opens a console, or after this long without one.
NIGHT_WAITS_S: Final = 90.0


@dataclass(frozen=True)
class DemoOptions:
    web_host: str
    web_port: int
    duration: float | None
    workdir: Path
    verbose: bool
    push_hosts: tuple[str, ...] = ()
