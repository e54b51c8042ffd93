import argparse
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from carewatch.commands.sim import add_sim_parser
from contract.wire import Observation
from device_profiles import load_profile
from edge.decoders.adstructures import decode_air_message, parse_advertising_data
from edge.decoders.ld2410 import basic_fields
from edge.decoders.micradar import MicRadarFramer
from edge.decoders.registry import make_ble_decoder, make_serial_decoder
from simulators import bthome, ld2410, mr60bha1, tinyframe, xiaomi
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, advert, button_press, service_data, smoke
from simulators.mr60fda1 import FRAMES, MR60FDA1Simulator
from simulators.serial_pty import SerialPtySimulator

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


# Reference section 2B simulator frames, and 3.1 / 5.1 examples.
TINYFRAME_REFERENCE = {
    "fall": "01 00 01 00 01 0E 02 F2 01 FE",
    "fall_cleared": "01 00 02 00 01 0E 02 F1 00 FF",
    "present": "01 00 03 00 01 0F 09 FA 01 FE",
    "breathing_15": "01 00 04 00 04 0A 14 E0 00 00 70 41 CE",
    "heart_72": "01 00 05 00 04 0A 15 E0 00 00 90 42 2D",
    "distance": "01 00 06 00 08 0A 16 EC 01 00 00 00 00 00 00 3F C1",
}


def _hex(frame: bytes) -> str:
    return frame.hex(" ").upper()


def test_tinyframe_frames_equal_the_reference_bytes() -> None:
    named = tinyframe.FDA2_FRAMES | tinyframe.BHA2_FRAMES
    assert {name: _hex(named[name]) for name in TINYFRAME_REFERENCE} == TINYFRAME_REFERENCE
    assert _hex(tinyframe.heart_rate(0x6975, 0.0)) == "01 69 75 00 04 0A 15 F9 00 00 00 00 FF"
    assert _hex(tinyframe.breathing(0x3A33, 0.0)) == "01 3A 33 00 04 0A 14 ED 00 00 00 00 FF"


def test_mr60bha1_frames_equal_the_reference_bytes() -> None:
    assert _hex(mr60bha1.FRAMES["heart_72"]) == "53 59 85 02 00 01 48 7C 54 43"
    assert _hex(mr60bha1.FRAMES["breathing_16"]) == "53 59 81 02 00 01 10 40 54 43"
    assert _hex(mr60bha1.FRAMES["in_bed"]) == "53 59 84 01 00 01 01 33 54 43"
    assert _hex(mr60bha1.FRAMES["heartbeat"]) == "53 59 01 01 00 01 0F BE 54 43"


def test_ld2410_frames_equal_the_reference_bytes() -> None:
    assert _hex(ld2410.FRAMES["stationary"]) == (
        "F4 F3 F2 F1 0D 00 02 AA 02 51 00 00 00 00 3B 00 00 55 00 F8 F7 F6 F5"
    )
    assert _hex(ld2410.FRAMES["both"]) == (
        "F4 F3 F2 F1 0D 00 02 AA 03 4F 00 64 4C 00 64 32 00 55 00 F8 F7 F6 F5"
    )
    engineering = ld2410.engineering_report(
        basic_fields(3, 30, 60, 0, 57, 0),
        [0x3C, 0x22, 0x05, 0x03, 0x03, 0x04, 0x03, 0x06, 0x05],
        [0x00, 0x00, 0x39, 0x10, 0x13, 0x06, 0x06, 0x08, 0x04],
        bytes([0x03, 0x05]),
    )
    assert _hex(engineering) == (
        "F4 F3 F2 F1 23 00 01 AA 03 1E 00 3C 00 00 39 00 00 08 08 3C 22 05 03 03 04 03 06 05"
        " 00 00 39 10 13 06 06 08 04 03 05 55 00 F8 F7 F6 F5"
    )


def test_xiaomi_simulator_reproduces_the_encrypted_reference_vectors() -> None:
    door = xiaomi.service_data(
        0x098B,
        0x04A3,
        [(0x1019, b"\x02")],
        mac="E4:AA:EC:81:21:AE",
        key=bytes.fromhex("017e52d2684779298709b117c0a75a7b"),
    )
    assert _hex(door) == "58 58 8B 09 A3 AE 21 81 EC AA E4 0E 2C 55 3C 04 00 00 D2 8A 50 0C"
    motion = xiaomi.service_data(
        0x0A8D,
        0x068C,
        [(0x000F, bytes.fromhex("000100"))],
        mac="18:C2:3C:20:8E:77",
        key=bytes.fromhex("4960bb9f8711b4ffd7df1756d11427ae"),
        registered=True,
    )
    assert _hex(motion) == (
        "58 59 8D 0A 8C 77 8E 20 3C C2 18 5A 27 36 28 EC 32 06 00 00 C4 26 40 15"
    )


def test_xiaomi_simulator_reproduces_the_plain_reference_vector() -> None:
    plain = xiaomi.service_data(
        0x03DD,
        0x24,
        [(0x0003, b"\x01")],
        mac="AA:BB:CC:DD:EE:FF",
        include_mac=False,
        version=3,
        auth_mode=0,
    )
    assert _hex(plain) == "40 30 DD 03 24 03 00 01 01"


def test_bthome_door_and_motion_adverts_equal_the_reference_layout() -> None:
    assert bthome.motion(0x21, True, 100).hex(" ") == "02 01 06 0a 16 d2 fc 40 00 21 01 64 21 01"
    assert bthome.door_window(0x4E, True, 100).hex(" ") == (
        "02 01 06 0a 16 d2 fc 40 00 4e 01 64 2d 01"
    )


@pytest.mark.parametrize(
    ("model", "frames", "expected"),
    [
        ("seeed-mr60bha1", mr60bha1.FRAMES, {"occupancy", "heart_rate", "respiration_rate"}),
        ("seeed-mr60fda2", tinyframe.FDA2_FRAMES, {"fall", "presence"}),
        ("seeed-mr60bha2", tinyframe.BHA2_FRAMES, {"presence", "heart_rate", "respiration_rate"}),
        ("hlk-ld2410", ld2410.FRAMES, {"presence", "motion"}),
    ],
)
def test_every_serial_simulator_frame_reads_back_through_a_pty(
    tmp_path: Path, model: str, frames: dict[str, bytes], expected: set[str]
) -> None:
    decoder = make_serial_decoder(load_profile(model), "dev-1")
    stream = b"".join(frames.values())
    with SerialPtySimulator(frames, link=tmp_path / "tty") as device:
        with serial.Serial(str(device.link), 115200, timeout=0.5) as port:
            for name in frames:
                device.send(name)
            data = _read(port, len(stream))
    assert data == stream
    observations = decoder.feed(data, 1.0)
    assert expected <= {obs.name for obs in observations}
    assert (decoder.rejected, decoder.pending) == (Counter(), 0)


@pytest.mark.parametrize(
    ("argv", "model", "key", "expected"),
    [
        (["door"], "shelly-blu-door-window", None, {"contact_open": True, "battery": 90}),
        (["motion", "--clear"], "shelly-blu-motion", None, {"motion": False, "battery": 90}),
        (["pressure-mat", "--key", "11" * 16], "linptech-ps1bb", "11" * 16, {"occupancy": True}),
        (["xiaomi-smoke", "--clear"], "xiaomi-jtyjgd03mi", None, {"smoke": False}),
    ],
)
def test_sim_command_sends_adverts_the_profiles_decode(
    argv: list[str], model: str, key: str | None, expected: dict[str, object]
) -> None:
    address = "A4:C1:38:00:00:01"
    parser = argparse.ArgumentParser(prog="carewatch")
    add_sim_parser(parser.add_subparsers(dest="command"))
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = str(Path(directory) / "air.sock")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.settimeout(5)
        try:
            args = parser.parse_args(["sim", *argv, "--socket", path, "--address", address])
            assert args.func(args) == 0
            _, rssi, raw = decode_air_message(receiver.recv(4096))
        finally:
            receiver.close()
    decoder = make_ble_decoder(
        load_profile(model), "dev-1", address, None if key is None else bytes.fromhex(key)
    )
    observations = decoder.decode(parse_advertising_data(address, rssi, raw), 1.0)
    assert {obs.name: obs.value for obs in observations if obs.name != "rssi"} == expected
