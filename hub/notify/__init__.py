"""How a notification reaches a person: the channel protocol and the console channel (`base`),
Web Push (`push`, its routes in `routes`), Apprise (`apprise_channel`) and the guard on where the
hub may connect when it sends (`outbound`). Imports `core`, `registry`, `access` and `alerts`."""
