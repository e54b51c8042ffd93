"""The alert lifecycle (open, repeat, acknowledge, resolve, condition cleared), its record
(audit) and the live bus the consoles and the escalation listen to (`lifecycle`). Imports `core`
and `registry`."""
