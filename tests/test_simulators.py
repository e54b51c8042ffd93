import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from device_profiles import load_profile
from edge.decoders.adstructures import decode_air_message
from edge.decoders.micradar import MicRadarFramer
from edge.decoders.registry import make_serial_decoder
from edge.wire import Observation
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, advert, button_press, service_data, smoke
from simulators.mr60fda1 import FRAMES, MR60FDA1Simulator

# Reference section 2A simulator table, plus the two "cleared"/"stationary" frames it implies.
REFERENCE_FRAMES = {
    "fall": "53 59 83 01 00 01 01 32 54 43",
    "fall_cleared": "53 59 83 01 00 01 00 31 54 43",
    "stillness": "53 59 83 05 00 01 01 36 54 43",
    "stillness_cleared": "53 59 83 05 00 01 00 35 54 43",
    "present": "53 59 80 01 00 01 01 2F 54 43",
    "absent": "53 59 80 01 00 01 00 2E 54 43",
    "moving": "53 59 80 02 00 01 02 31 54 43",
    "stationary": "53 59 80 02 00 01 01 30 54 43",
    "heartbeat": "53 59 01 01 00 01 0F BE 54 43",
}


def _summary(observations: list[Observation]) -> list[tuple[str, object]]:
    return [(obs.name, obs.value) for obs in observations]


@pytest.fixture
def radar(tmp_path: Path) -> Iterator[MR60FDA1Simulator]:
    simulator = MR60FDA1Simulator(link=tmp_path / "ttyRADAR0")
    yield simulator
    simulator.close()


def _read(port: serial.Serial, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while len(data) < size and time.monotonic() < deadline:
        data += port.read(size - len(data))
    return data


def test_frames_equal_the_reference_bytes() -> None:
    assert {name: frame.hex(" ").upper() for name, frame in FRAMES.items()} == REFERENCE_FRAMES


def test_every_frame_passes_the_framer() -> None:
    framer = MicRadarFramer()
    frames = framer.feed(b"".join(FRAMES.values()))
    assert len(frames) == len(FRAMES)
    assert not framer.rejected


def test_pty_frames_read_back_with_pyserial_decode(radar: MR60FDA1Simulator) -> None:
    assert radar.link is not None and radar.link.resolve() == Path(radar.port)
    decoder = make_serial_decoder(load_profile("seeed-mr60fda1"), "radar-1")
    names = ["present", "moving", "heartbeat", "fall", "stillness", "fall_cleared"]
    with serial.Serial(str(radar.link), 115200, timeout=0.5) as port:
        for name in names:
            radar.send(name)
        data = _read(port, sum(len(FRAMES[name]) for name in names))
    assert _summary(decoder.feed(data, 1.0)) == [
        ("presence", True),
        ("motion", True),
        ("fall", True),
        ("stillness", True),
        ("fall", False),
    ]
    assert not decoder.rejected


def test_pty_survives_a_reader_reopening_it(radar: MR60FDA1Simulator) -> None:
    with serial.Serial(radar.port, 115200, timeout=0.5) as port:
        radar.send("absent")
        assert _read(port, len(FRAMES["absent"])) == FRAMES["absent"]
    with serial.Serial(radar.port, 115200, timeout=0.5) as port:
        radar.send(bytes.fromhex(REFERENCE_FRAMES["fall"]))
        assert _read(port, len(FRAMES["fall"])) == FRAMES["fall"]


def test_close_removes_the_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyRADAR1"
    with MR60FDA1Simulator(link=link) as simulator:
        assert link.is_symlink()
        assert simulator.port.startswith("/dev/pts/")
    assert not link.exists()


def test_bthome_spec_encryption_vector_is_reproduced() -> None:
    objects = [(0x02, bytes.fromhex("CA09")), (0x03, bytes.fromhex("BF13"))]
    key = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
    encryption = Encryption(key, "54:48:E6:8F:80:A5", 0x00112233)
    sealed = service_data(objects, encryption=encryption)
    assert sealed.hex() == "41e445f3c9962b332211006c7c4519"


def test_shelly_button_vector_is_reproduced() -> None:
    key = bytes.fromhex("90bffd73cb6b26ef58a7a8eba9232036")
    raw = button_press(7, 100, encryption=Encryption(key, "B4:35:22:F5:3D:A4", 442))
    assert raw.hex() == "0201061216d2fc450aeb84467f85ba0100003188788c"


def test_plain_adverts_equal_the_reference_frames() -> None:
    assert smoke(5, True, 90).hex(" ") == "02 01 06 0a 16 d2 fc 40 00 05 01 5a 29 01"
    assert button_press(0x11, 100, "long_press").hex(" ") == (
        "02 01 06 0a 16 d2 fc 44 00 11 01 64 3a 04"
    )


def test_objects_are_sent_in_ascending_id_order_with_optional_name() -> None:
    raw = advert([(0x29, b"\x01"), (0x01, b"\x5a"), (0x00, b"\x05")], name="DIY-sensor")
    assert raw.hex(" ") == (
        "02 01 06 0b 09 44 49 59 2d 73 65 6e 73 6f 72 0a 16 d2 fc 40 00 05 01 5a 29 01"
    )


def test_advert_longer_than_a_legacy_advert_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds 31"):
        advert([(0x54, bytes([22]) + bytes(22))])


def test_air_sender_delivers_the_advert_as_a_datagram() -> None:
    raw = smoke(1, False, 100)
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = str(Path(directory) / "air.sock")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.settimeout(5)
        try:
            with BLEAirSender(path) as sender:
                sender.send("AA:BB:CC:DD:EE:FF", raw, rssi=-55)
            datagram = receiver.recv(4096)
        finally:
            receiver.close()
    assert decode_air_message(datagram) == ("AA:BB:CC:DD:EE:FF", -55, raw)
