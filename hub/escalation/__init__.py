"""Who must answer an alert and what happens when nobody does: the engine and its policy
(`engine`, `policy`), the roster and the uncovered-zone alarm (`roster`, `roster_watch`),
response-time figures (`figures`) and their routes. Imports `core`, `registry`, `access`,
`alerts`, `notify` and `watch`."""
