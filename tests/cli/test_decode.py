import argparse
import io
import json

import pytest

from carewatch.commands.decode import add_decode_parser, decode_main, run_decode
from simulators import xiaomi
from simulators.bthome import Encryption, button_press, door_window, motion, smoke

FALL = "53 59 83 01 00 01 01 32 54 43"
PRESENT = "535980010001012f5443"
BAD_CHECKSUM = "53 59 83 01 00 01 01 33 54 43"
BUTTON_KEY = "90bffd73cb6b26ef58a7a8eba9232036"
BUTTON_MAC = "B4:35:22:F5:3D:A4"
SPEC_KEY = "231d39c1d7cc1ab1aee224cd096db932"
SPEC_MAC = "54:48:E6:8F:80:A5"


def _run(
    profile: str,
    frames: list[str],
    stdin: str | None = None,
    *,
    address: str | None = None,
    key: str | None = None,
    rssi: int | None = None,
) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    source = None if stdin is None else io.StringIO(stdin)
    status = run_decode(profile, frames, source, out, address=address, key=key, rssi=rssi, err=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return status, lines, err.getvalue()


def test_serial_frames_print_one_json_line_per_observation() -> None:
    status, lines, err = _run("seeed-mr60fda1", [FALL, PRESENT])
    assert status == 0
    assert lines == [{"event": "fall", "value": True}, {"reading": "presence", "value": True}]
    assert err == ""


def test_serial_frames_from_stdin_lines() -> None:
    status, lines, _ = _run("seeed-mr60fda1", [], stdin=f"{FALL}\n\n{PRESENT.upper()}\n")
    assert status == 0
    assert [line.get("event", line.get("reading")) for line in lines] == ["fall", "presence"]


def test_frame_split_across_inputs_is_joined() -> None:
    status, lines, _ = _run("seeed-mr60fda1", ["53 59 83", "01 00 01 01 32 54 43"])
    assert (status, lines) == (0, [{"event": "fall", "value": True}])


def test_rejected_frame_is_reported_and_exits_1() -> None:
    status, lines, err = _run("seeed-mr60fda1", [BAD_CHECKSUM, PRESENT])
    assert status == 1
    assert lines == [{"reading": "presence", "value": True}]
    assert "input 1: rejected bad_checksum (1)" in err


def test_incomplete_frame_at_the_end_exits_1() -> None:
    status, lines, err = _run("seeed-mr60fda1", [FALL, "53 59 80 01"])
    assert status == 1
    assert lines == [{"event": "fall", "value": True}]
    assert "truncated" in err


def test_unmapped_frame_prints_nothing_and_is_not_an_error() -> None:
    status, lines, err = _run("seeed-mr60fda1", ["53 59 01 01 00 01 0F BE 54 43"])
    assert (status, lines, err) == (0, [], "")


def test_invalid_hex_exits_2_naming_the_input() -> None:
    status, lines, err = _run("seeed-mr60fda1", [FALL, "53 5G"])
    assert (status, lines) == (2, [])
    assert "input 2 is not hex" in err


def test_unknown_profile_exits_2_listing_the_available_ones() -> None:
    status, _, err = _run("nope", [FALL])
    assert status == 2
    assert "'nope'" in err
    assert "seeed-mr60fda1" in err and "shelly-blu-button1" in err


def test_no_input_exits_2() -> None:
    status, _, err = _run("seeed-mr60fda1", [], stdin="")
    assert status == 2
    assert "no input" in err


def test_ble_advert_decodes_without_rssi_unless_given() -> None:
    raw = smoke(4, True, 77).hex()
    status, lines, _ = _run("bthome-smoke", [raw])
    assert status == 0
    assert lines == [{"reading": "smoke", "value": True}, {"reading": "battery", "value": 77}]
    _, with_rssi, _ = _run("bthome-smoke", [raw], rssi=-42)
    assert with_rssi[-1] == {"reading": "rssi", "value": -42}


def test_encrypted_ble_advert_decodes_with_key_and_address() -> None:
    raw = button_press(7, 100, encryption=Encryption(bytes.fromhex(BUTTON_KEY), BUTTON_MAC, 442))
    status, lines, _ = _run("shelly-blu-button1", [raw.hex()], address=BUTTON_MAC, key=BUTTON_KEY)
    assert status == 0
    assert lines[0] == {"event": "call_button", "value": "press"}


def test_encrypted_ble_advert_with_wrong_key_exits_1() -> None:
    raw = button_press(7, 100, encryption=Encryption(bytes.fromhex(BUTTON_KEY), BUTTON_MAC, 442))
    status, lines, err = _run("shelly-blu-button1", [raw.hex()], address=BUTTON_MAC, key="00" * 16)
    assert (status, lines) == (1, [])
    assert "input 1: rejected bad_key" in err


@pytest.mark.parametrize(
    ("key", "address", "message"),
    [
        (BUTTON_KEY, None, "--key needs --address"),
        ("00" * 8, BUTTON_MAC, "32 hex digits"),
        ("xyz", BUTTON_MAC, "--key is not hex"),
    ],
)
def test_bad_ble_options_exit_2(key: str, address: str | None, message: str) -> None:
    status, _, err = _run("shelly-blu-button1", ["020106"], address=address, key=key)
    assert status == 2
    assert message in err


def test_parser_registration_runs_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="carewatch")
    add_decode_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["decode", "--profile", "seeed-mr60fda1", FALL])
    assert args.func is decode_main
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out) == {"event": "fall", "value": True}


@pytest.mark.parametrize(
    ("profile", "frame", "expected"),
    [
        (
            "seeed-mr60bha1",
            "53 59 85 02 00 01 48 7C 54 43",
            [{"reading": "heart_rate", "value": 72}],
        ),
        (
            "seeed-mr60bha1",
            "53 59 84 01 00 01 01 33 54 43",
            [{"reading": "occupancy", "value": True}],
        ),
        ("seeed-mr60fda2", "01 00 01 00 01 0E 02 F2 01 FE", [{"event": "fall", "value": True}]),
        (
            "seeed-mr60bha2",
            "01 00 04 00 04 0A 14 E0 00 00 70 41 CE",
            [{"reading": "respiration_rate", "value": 15.0}],
        ),
        (
            "hlk-ld2410",
            "F4 F3 F2 F1 0D 00 02 AA 02 51 00 00 00 00 3B 00 00 55 00 F8 F7 F6 F5",
            [{"reading": "presence", "value": True}, {"reading": "motion", "value": False}],
        ),
    ],
)
def test_new_serial_profiles_decode(
    profile: str, frame: str, expected: list[dict[str, object]]
) -> None:
    assert _run(profile, [frame]) == (0, expected, "")


@pytest.mark.parametrize(
    ("profile", "frame", "reason"),
    [
        ("seeed-mr60fda2", "01 00 01 00 01 0E 02 F2 01 FF", "bad_checksum"),
        ("seeed-mr60fda2", "01 00 01 00 01 0E 02 F3 01 FE", "bad_head_checksum"),
        (
            "hlk-ld2410",
            "F4 F3 F2 F1 0D 00 02 AA 02 51 00 00 00 00 3B 00 00 55 00 F8 F7 F6 F4",
            "bad_footer",
        ),
    ],
)
def test_new_serial_profiles_report_rejections(profile: str, frame: str, reason: str) -> None:
    status, lines, err = _run(profile, [frame])
    assert (status, lines) == (1, [])
    assert f"input 1: rejected {reason} (" in err


@pytest.mark.parametrize(
    ("profile", "advert", "expected"),
    [
        (
            "shelly-blu-door-window",
            door_window(1, True, 80, encryption=Encryption(bytes.fromhex(SPEC_KEY), SPEC_MAC, 9)),
            {"reading": "contact_open", "value": True},
        ),
        (
            "shelly-blu-motion",
            motion(1, True, 80, encryption=Encryption(bytes.fromhex(SPEC_KEY), SPEC_MAC, 9)),
            {"reading": "motion", "value": True},
        ),
        (
            "xiaomi-jtyjgd03mi",
            xiaomi.smoke(SPEC_MAC, 0x0101, True, key=bytes.fromhex(SPEC_KEY)),
            {"reading": "smoke", "value": True},
        ),
        (
            "linptech-ps1bb",
            xiaomi.pressure(SPEC_MAC, 0x0101, True, key=bytes.fromhex(SPEC_KEY)),
            {"reading": "occupancy", "value": True},
        ),
    ],
)
def test_new_encrypted_ble_profiles_decode_with_key(
    profile: str, advert: bytes, expected: dict[str, object]
) -> None:
    status, lines, err = _run(profile, [advert.hex()], address=SPEC_MAC, key=SPEC_KEY)
    assert (status, err) == (0, "")
    assert lines[0] == expected


def test_xiaomi_replayed_advert_is_reported() -> None:
    key = bytes.fromhex(SPEC_KEY)
    newer = xiaomi.pressure(SPEC_MAC, 0x0200, True, key=key).hex()
    older = xiaomi.pressure(SPEC_MAC, 0x01FF, False, key=key).hex()
    status, lines, err = _run("linptech-ps1bb", [newer, older], address=SPEC_MAC, key=SPEC_KEY)
    assert (status, lines) == (1, [{"reading": "occupancy", "value": True}])
    assert "input 2: rejected replay" in err
