"""The supervisor view: the overview of sites, alerts, devices and figures (`overview`) and its
routes and CSV exports. Imports any folder below it; not `console`, `family`, `commissioning`
or `http`."""
