"""edge.ble: the simulated air socket and the dispatcher, with the real BTHome decoder."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from device_profiles import load_profile
from edge.ble import BLEDispatcher, SimulatedAirBackend
from edge.decoders.adstructures import parse_advertising_data
from edge.decoders.base import Advertisement
from edge.decoders.registry import make_ble_decoder
from edge.wire import Observation
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, button_press
from tests.edge_helpers import eventually

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
