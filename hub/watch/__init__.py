"""The 24-hour watch: the alert rules over every accepted reading and event (`rules`), their
settings and overrides (`settings`), every bed's state (`bed_state`) and which rules the fitted
devices can serve (`coverage`). Imports `core`, `registry`, `telemetry` and `alerts`."""
