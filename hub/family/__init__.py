"""The family app: what a family sees of their resident (`view`), what they are told about the
response, only what the record shows (`answers`), and its routes. Imports any folder below it;
not `console`, `supervisor`, `commissioning` or `http`."""
