"""The hostile soak of benchmarks/hostile_soak.py, for half a minute: a real Mosquitto with the
shipped configuration, the hub in its own process, fleet traffic, a gateway publishing poison,
oversized payloads and takeovers, and falls from the fleet's gateways meanwhile.

The ten-minute run, and the hub's memory over it, are the benchmark's (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.hostile_soak import report, run_soak


async def test_every_fall_alerts_and_every_poison_is_counted_beside_a_hostile_gateway(
    tmp_path: Path,
) -> None:
    result = await run_soak(30, beds=200, fall_every=2.0, hostile_rate=10.0, workdir=tmp_path)
    summary = report(result)
    assert len(result.falls_injected) >= 10, summary
    assert result.falls_missed == [], summary
    poison = sum(result.poison_delivered.values())
    assert poison >= 50 and result.takeovers_tried >= 4, summary
    assert set(result.poison_delivered) >= {"deep_nesting", "digits_5000", "at_infinity"}, summary
    # Each poison message the broker passed on is refused and counted once, and nothing else is.
    assert result.rejections_counted == poison, summary
    assert result.hub_offline_seen == 0, summary
    assert result.hub_accepted == result.fleet_items > 0, summary
