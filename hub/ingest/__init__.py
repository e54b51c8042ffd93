"""From the broker to the watch: the MQTT link (`mqtt_link`) and the pipeline that checks,
orders, stores and hands on every message, alarms first (`pipeline`). Imports `core`,
`registry`, `alerts` and `watch`."""
