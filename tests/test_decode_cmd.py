import argparse
import io
import json

import pytest

from carewatch.decode_cmd import add_decode_parser, decode_main, run_decode
from simulators.bthome import Encryption, button_press, smoke

FALL = "53 59 83 01 00 01 01 32 54 43"
PRESENT = "535980010001012f5443"
BAD_CHECKSUM = "53 59 83 01 00 01 01 33 54 43"
BUTTON_KEY = "90bffd73cb6b26ef58a7a8eba9232036"
BUTTON_MAC = "B4:35:22:F5:3D:A4"


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
