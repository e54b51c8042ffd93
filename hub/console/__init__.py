"""The night staff's console: the bed board (`board`), a resident's history (`resident_history`),
the shift handover (`handover`), which consoles are open and armed and the unwatched-zone alarm
(`presence`), and their routes. Imports any folder below it; not `family`, `supervisor`,
`commissioning` or `http`."""
