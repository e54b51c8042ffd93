"""Feeding the Home Assistant BLE parsers (bthome-ble, xiaomi-ble) outside Home Assistant.

Both take a habluetooth BluetoothServiceInfoBleak and return a sensor_state_data SensorUpdate;
a fresh parser per advert is used, as a SensorUpdate accumulates the values of earlier ones.
"""

from __future__ import annotations

from bleak.backends.device import BLEDevice
from habluetooth import BluetoothServiceInfoBleak
from sensor_state_data import SensorUpdate

from edge.decoders.base import Advertisement
from edge.decoders.rules import Raw


def service_info(
    adv: Advertisement, address: str, uuid: str, data: bytes, at: float
) -> BluetoothServiceInfoBleak:
    """The parsers' input for one advert's service data under `uuid`.

    `address` is the configured MAC, not adv.address: decryption nonces are built from it,
    and macOS reports a UUID instead of the MAC.
    """
    name = adv.local_name or address
    return BluetoothServiceInfoBleak(
        name=name,
        address=address,
        rssi=adv.rssi,
        manufacturer_data=adv.manufacturer_data,
        service_data={uuid: data},
        service_uuids=[uuid],
        source="carewatch",
        device=BLEDevice(address, name, None),
        advertisement=None,
        connectable=False,
        time=at,
        tx_power=None,
    )


def raw_values(update: SensorUpdate) -> dict[str, Raw]:
    """The parser's values by key. A sensor wins over a binary sensor of the same key
    (battery % over battery-low); events give their type ("press")."""
    values: dict[str, Raw] = {
        str(key.key): event.event_type for key, event in update.events.items()
    }
    for key, binary in update.binary_entity_values.items():
        if binary.native_value is not None:
            values[str(key.key)] = binary.native_value
    for key, sensor in update.entity_values.items():
        value = sensor.native_value
        if value is not None:
            values[str(key.key)] = value if isinstance(value, int | float | str) else str(value)
    return values
