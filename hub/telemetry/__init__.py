"""Telemetry: what the devices and gateways said, as stored. Readings and events, each device's
latest values, each gateway's de-duplication mark and session state, and every device's
reported health (`records`). Ingest writes them; the watch, the walk tests, the bed states and
the supervisor read device health through them. Imports `core`."""
