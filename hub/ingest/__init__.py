"""From the broker to the watch: the MQTT link (`mqtt_link`) and the pipeline that checks,
orders, stores (in `telemetry`) and hands on every message, alarms first (`pipeline`). Imports
`core`, `registry`, `telemetry`, `alerts` and `watch`."""
