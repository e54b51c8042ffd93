"""edge.ble: the simulated air socket, bleak's adverts and errors, and the dispatcher, with the
real BTHome decoder."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from contract.wire import Observation
from device_profiles import load_profile
from edge.ble import (
    BleakBackend,
    BLEDispatcher,
    BLEUnavailable,
    SimulatedAirBackend,
    advertisement_from_bleak,
    bluetooth_problem,
    passive_patterns,
)
from edge.decoders.adstructures import (
    AD_SERVICE_DATA_16,
    parse_advertising_data,
    split_ad_structures,
    uuid16_to_128,
)
from edge.decoders.base import Advertisement
from edge.decoders.registry import make_ble_decoder
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, button_press
from tests.support.waiting import eventually

BUTTON = "B4:35:22:F5:3D:A4"
KEY = bytes.fromhex("90bffd73cb6b26ef58a7a8eba9232036")


async def test_air_socket_turns_datagrams_into_adverts(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ble-air.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))  # left behind by a crashed agent
    stale.close()

    backend = SimulatedAirBackend(path)
    adverts: list[Advertisement] = []
    task = asyncio.create_task(backend.run(adverts.append))
    try:
        await asyncio.wait_for(backend.ready.wait(), 5)
        with (
            BLEAirSender(path) as air,
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw,
        ):
            air.send(BUTTON.lower(), button_press(1, 90), rssi=-61)
            raw.sendto(b"not json", str(path))
            raw.sendto(b'{"address":"B4:35:22:F5:3D:A4","rssi":-60,"adv":"05ff"}', str(path))
            air.send(BUTTON, button_press(2, 90))
        await eventually(lambda: len(adverts) == 2 and backend.received == 4)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert adverts[0].address == BUTTON
    assert adverts[0].rssi == -61
    assert "0000fcd2-0000-1000-8000-00805f9b34fb" in adverts[0].service_data
    assert backend.rejected == {"bad_datagram": 1, "bad_datagram.malformed_ad": 1}
    assert not path.exists()  # removed on the way out


async def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "ble-air.sock"
    path.write_text("not a socket")
    with pytest.raises(FileExistsError):
        await SimulatedAirBackend(path).run(lambda adv: None)


def test_dispatcher_routes_by_address_and_counts_rejections() -> None:
    profile = load_profile("shelly-blu-button1")
    decoder = make_ble_decoder(profile, "button-b12", BUTTON, KEY)
    received: list[Observation] = []
    dispatch = BLEDispatcher(
        {BUTTON.lower(): ("button-b12", decoder)}, received.extend, clock=lambda: 1e9
    )

    def advert(address: str, raw: bytes) -> Advertisement:
        return parse_advertising_data(address, -60, raw)

    sealed = Encryption(KEY, BUTTON, counter=1)
    dispatch(advert(BUTTON, button_press(1, 88, encryption=sealed)))
    dispatch(advert("11:22:33:44:55:66", button_press(1, 88)))  # a neighbour's button
    dispatch(advert(BUTTON, button_press(2, 88)))  # plaintext, but this device has a key
    names = sorted(obs.name for obs in received)
    assert "call_button" in names
    assert all(obs.device == "button-b12" for obs in received)
    assert dispatch.rejected == {"unknown_device": 1, "button-b12.encryption_mismatch": 1}
    assert dispatch.accepted == {"button-b12": 1}


def bleak_pair(address: str, raw: bytes, rssi: int) -> tuple[BLEDevice, AdvertisementData]:
    """What bleak's BlueZ backend hands a detection callback for one advert: BlueZ's Device1
    properties, with service data keyed by full UUID and stripped of the 16-bit UUID."""
    service_data = {
        uuid16_to_128(int.from_bytes(data[:2], "little")): data[2:]
        for ad_type, data in split_ad_structures(raw)
        if ad_type == AD_SERVICE_DATA_16
    }
    path = f"/org/bluez/hci0/dev_{address.replace(':', '_')}"
    props = {"Address": address, "RSSI": rssi, "ServiceData": service_data, "UUIDs": []}
    data = AdvertisementData(
        local_name=None,
        manufacturer_data={},
        service_data=service_data,
        service_uuids=[],
        tx_power=None,
        rssi=rssi,
        platform_data=(path, props),
    )
    return BLEDevice(address, None, {"path": path, "props": props}), data


def test_bleak_adverts_reach_only_provisioned_decoders() -> None:
    profile = load_profile("shelly-blu-button1")
    decoder = make_ble_decoder(profile, "button-b12", BUTTON, KEY)
    received: list[Observation] = []
    dispatch = BLEDispatcher({BUTTON: ("button-b12", decoder)}, received.extend, clock=lambda: 1e9)

    sealed = Encryption(KEY, BUTTON, counter=5)
    press = button_press(1, 70, encryption=sealed)
    mine = advertisement_from_bleak(*bleak_pair(BUTTON.lower(), press, -66))
    assert mine.address == BUTTON
    assert mine.rssi == -66
    assert set(mine.service_data) == {"0000fcd2-0000-1000-8000-00805f9b34fb"}
    dispatch(mine)
    for neighbour in range(50):  # a busy street: counted, never logged one by one
        address = f"11:22:33:44:55:{neighbour:02X}"
        dispatch(advertisement_from_bleak(*bleak_pair(address, button_press(1, 90), -80)))

    values = {obs.name: obs.value for obs in received}
    assert values["call_button"] == "press"
    assert values["battery"] == 70
    assert values["rssi"] == -66
    assert dispatch.rejected == {"unknown_device": 50}


def test_passive_scanning_matches_bthome_and_mibeacon_service_data() -> None:
    patterns = passive_patterns()
    assert [(p.start_position, p.ad_data_type, p.content_of_pattern) for p in patterns] == [
        (0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xd2\xfc"),
        (0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x95\xfe"),
    ]


@pytest.mark.parametrize(
    ("error", "reason", "advice"),
    [
        (FileNotFoundError(2, "No such file or directory"), "no_dbus", "sudo apt install bluez"),
        (
            BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["no org.bluez"]),
            "no_bluez",
            "systemctl enable --now bluetooth",
        ),
        (BleakError("adapter 'hci1' not found"), "no_adapter", "bluetoothctl list"),
        (
            BleakBluetoothNotAvailableError(
                "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            ),
            "no_adapter",
            "bluetoothctl list",
        ),
        (
            BleakBluetoothNotAvailableError(
                "No powered Bluetooth adapters found.",
                BleakBluetoothNotAvailableReason.POWERED_OFF,
            ),
            "powered_off",
            "rfkill unblock bluetooth",
        ),
        (
            BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", ["denied"]),
            "denied",
            "usermod -aG bluetooth",
        ),
        (
            BleakError(
                "passive scanning on Linux requires BlueZ >= 5.56 with --experimental enabled "
                "and Linux kernel >= 5.10"
            ),
            "passive_unsupported",
            "ble.scanning: active",
        ),
    ],
)
def test_bluetooth_problems_say_what_to_do(error: Exception, reason: str, advice: str) -> None:
    problem = bluetooth_problem(error, "hci1")
    assert (problem.reason, advice in problem.message) == (reason, True), problem.message


async def test_bleak_without_bluez_or_adapter_raises_an_actionable_error() -> None:
    """On this machine (no D-Bus system bus, no BlueZ, no adapter hci99) the real bleak fails."""
    backend = BleakBackend("hci99", "auto")
    with pytest.raises(BLEUnavailable) as raised:
        await asyncio.wait_for(backend.run(lambda adv: None), 30)
    assert raised.value.reason in {"no_dbus", "no_bluez", "no_adapter", "denied"}
    assert "bluetoothctl list" in raised.value.message or "usermod" in raised.value.message
    assert not backend.ready.is_set()
