"""The alert lifecycle (open, repeat, acknowledge, resolve, condition cleared), its record
(audit) and the live bus the consoles and the escalation listen to (`lifecycle`), an alert as the
staff read it (`placed`), and the alert queue's routes. Imports `core` and `registry`."""
