"""How long the time series are kept, as the `retention:` section of the hub configuration gives
it (docs/configuration.md, docs/database.md).

Raw readings are kept for `raw_days`; before they go, they are rolled up per device and series
into 1-minute and 1-hour buckets (hub/telemetry/rollups.py), kept for `minute_days` and
`hour_days`. Events, alerts, the audit log and the registry are records, not time series: this
retention never touches them, and carewatch never prunes them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY_S = 86_400.0


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw_days: float = Field(default=14, gt=0)
    minute_days: float = Field(default=14, gt=0)
    hour_days: float = Field(default=730, gt=0)
    # How often new samples are rolled up (a chart reads the samples not rolled up yet raw),
    # how often old ones are pruned, and how many rows one small step of either touches: a step
    # holds the database for a few milliseconds.
    rollup_every_s: float = Field(default=5, gt=0)
    every_s: float = Field(default=60, gt=0)
    step_rows: int = Field(default=5_000, ge=100)

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> RetentionSettings:
        if not self.raw_days <= self.minute_days <= self.hour_days:
            raise ValueError(
                "retention must keep 1-hour rollups at least as long as 1-minute rollups, "
                "and those at least as long as raw readings (raw_days <= minute_days <= hour_days)"
            )
        return self
