"""What the edge and the hub agree on: the MQTT wire format and its canonical vocabulary
(`wire`), and YAML documents checked with errors a person can act on (`yaml_documents`).
Imports nothing of carewatch: the edge, the device profiles, the hub and the simulators import
it."""
