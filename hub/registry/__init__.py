"""The registry: sites, zones, rooms, beds, residents, gateways, devices and their bindings
("one person, one bed, one code"). Models and validation (`models`), the read index the rest of
the hub asks where a device is (`index`, `data`), the one write path (`service`, `store`), CSV
import, contacts' Apprise URLs checked and masked (`contact_urls`), places and printable labels in
words (`labels`) and its HTTP routes (`routes`). Imports `core`."""
