"""What the watch benchmarks share: a 10,000-bed registry, a night clock, the background load.

Background beds are `BG-00000…` with residents `R-00000…`, one MR60BHA1 bed radar each
(`bg-radar-N`), 20 to a gateway (`bg-0000…`), as benchmarks/background_telemetry.py expects.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psutil

from hub.access.auth import hash_password
from hub.config import HubConfig
from hub.core.clock import ScaledClock

SITE: Final = "bench"
PASSWORD: Final = "bench-password"
BEDS_PER_GATEWAY: Final = 20
BED_RADAR: Final = "seeed-mr60bha1"
NIGHT_HOUR_UTC: Final = 23  # the default night is 22:00-07:00 in the site's zone (UTC)
HERE: Final = Path(__file__).resolve().parent


def night_clock() -> ScaledClock:
    """A clock at real speed that starts at the last 23:00 UTC: hours of night ahead."""
    now = datetime.now(UTC)
    start = now.replace(hour=NIGHT_HOUR_UTC, minute=0, second=0, microsecond=0)
    if start > now:
        start -= timedelta(days=1)
    return ScaledClock(start.timestamp(), 1.0)


def background_zone(beds: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The ward of background beds: (zone, devices, gateways)."""
    rooms = [
        {
            "id": f"bg{i}",
            "name": f"Room {i}",
            "beds": [
                {"code": f"BG-{i:05d}", "resident": {"code": f"R-{i:05d}", "name": f"Res {i}"}}
            ],
        }
        for i in range(beds)
    ]
    devices = [
        {
            "id": f"bg-radar-{i}",
            "gateway": f"bg-{i // BEDS_PER_GATEWAY:04d}",
            "profile": BED_RADAR,
            "bed": f"BG-{i:05d}",
        }
        for i in range(beds)
    ]
    gateways = sorted({device["gateway"] for device in devices})
    return {"id": "ward", "name": "Ward", "rooms": rooms}, devices, gateways


def site_spec(
    beds: int, extra: Sequence[tuple[dict[str, Any], list[dict[str, Any]], list[str]]] = ()
) -> dict[str, Any]:
    parts = [background_zone(beds), *extra]
    return {
        "id": SITE,
        "name": "Benchmark home",
        "gateways": sorted(g for _, _, gateways in parts for g in gateways),
        "zones": [zone for zone, _, _ in parts],
        "devices": [d for _, devices, _ in parts for d in devices],
    }


def hub_config(
    host: str, port: int, database: Path, site: dict[str, Any], watch: dict[str, Any] | None = None
) -> HubConfig:
    return HubConfig.model_validate(
        {
            "broker": {"host": host, "port": port, "client_id": "bench-hub"},
            "database": str(database),
            "web": {"port": 0, "secret_key": "b" * 40},
            "users": [
                {
                    "username": "nurse",
                    "password_hash": hash_password(PASSWORD),
                    "role": "staff",
                    "sites": ["*"],
                }
            ],
            "sites": [site],
            "watch": watch or {},
        }
    )


def start_telemetry(
    host: str, port: int, beds: int, *options: str, stdin: int | None = None
) -> subprocess.Popen[str]:
    """benchmarks/background_telemetry.py in its own process, bed-radar mix."""
    command = [
        sys.executable,
        str(HERE / "background_telemetry.py"),
        *("--beds", str(beds), "--host", host, "--port", str(port), "--site", SITE),
        *("--mix", "bed-radar"),
        *options,
    ]
    return subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, text=True)


def clock_offset(clock: ScaledClock) -> float:
    """What to add to time.time() to get the hub clock's time."""
    return clock.now() - time.time()


class CpuMeter:
    """CPU seconds used by a set of processes between `start()` and `stop()`."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self._processes = processes
        self._start: dict[str, float] = {}

    def _cpu(self, process: psutil.Process) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._start = {name: self._cpu(p) for name, p in self._processes.items()}

    def stop(self) -> dict[str, float]:
        return {name: self._cpu(p) - self._start[name] for name, p in self._processes.items()}


def child_named(name: str) -> psutil.Process:
    for child in psutil.Process().children(recursive=True):
        if child.name() == name:
            return child
    raise SystemExit(f"no child process named {name}")


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def store_size(database: Path) -> int:
    """Bytes of the SQLite database and its write-ahead log."""
    paths = [database, database.with_name(database.name + "-wal")]
    return sum(path.stat().st_size for path in paths if path.exists())
