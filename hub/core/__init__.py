"""The hub's foundations: the clock, the database connection and its numbered migrations, the
durable timers. Everything else builds on these; `core` imports nothing else of the hub."""
