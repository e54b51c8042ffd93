"""An installer's work: provisioning places, gateways and devices (`provisioning`), the walk
test and its commissioning report (`walktest`, `report`), and their routes. Imports any folder
below it; not `console`, `family`, `supervisor` or `http`."""
