"""benchmarks/fall_to_phone.py with tiny numbers, run as a user runs it: every fall reaches the
staff phone's push subscription at the local push service and the app's service worker in
Chromium, with no stray pushes. The figures themselves are the benchmark's
(docs/operations.md), not asserted here.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import REPO

BENCH = REPO / "benchmarks" / "fall_to_phone.py"


def test_every_fall_reaches_the_staff_phone_and_its_service_worker() -> None:
    command = [sys.executable, str(BENCH), "--falls", "3", "--background-beds", "40"]
    run = subprocess.run([*command, "--warmup", "0.5"], capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-3000:]
    assert "3 falls written, background beds: 40" in out, out
    assert "pushes received: 3/3 (missing 0); other pushes: 0" in out, out
    assert "shown by the service worker: 3/3 (missing 0)" in out, out
    # Receipts are timed when the service worker sends them; then every one must arrive.
    receipts = re.search(r"receipts at the hub: (\d+)/3", out)
    assert receipts is None or receipts.group(1) == "3", out
    assert receipts is not None or "sends none" in out, out
    assert "JavaScript errors" not in out, out
    # The hub's own count: one push per fall, none failed.
    pushed = re.search(r"hub push counters: (.*)", out)
    assert pushed is not None and re.search(r"'accepted': 3\b", pushed.group(1)), out
    assert "failed" not in pushed.group(1), out
