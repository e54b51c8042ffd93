"""The hub's foundations: the clock, the database connection and its numbered migrations, the
durable timers, and where the hub may connect when it sends (`outbound`: never an internal
address unless allowed). Everything else builds on these; `core` imports nothing else of the hub."""
