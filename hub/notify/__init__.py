"""How a notification reaches a person: the channel protocol and the console channel (`base`),
Web Push (`push`, its tables in `records`, its routes in `routes`) and Apprise
(`apprise_channel`). Imports `core`, `registry`, `access` and `alerts`."""
