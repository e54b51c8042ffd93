"""`carewatch decode`: decode hex captures with a device profile, one JSON line per observation.

Serial profiles: each input (argument or stdin line) is a chunk of the byte stream, so a frame
may span inputs. BLE profiles: each input is one advert's raw advertising data.
Exit status: 0 all decoded, 1 something was rejected, 2 the command itself was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Final, TextIO

from contract.wire import Observation
from device_profiles import DeviceProfile, ProfileError, available_profiles, load_profile
from edge.decoders.adstructures import parse_advertising_data
from edge.decoders.base import DecodeError
from edge.decoders.registry import make_ble_decoder, make_serial_decoder

OK: Final = 0
REJECTED: Final = 1
USAGE: Final = 2
DEVICE_ID: Final = "decode"
NO_ADDRESS: Final = "00:00:00:00:00:00"

EXPLAIN: Final = {
    "garbage": "bytes outside any frame",
    "oversized": "length field too large for a frame",
    "bad_checksum": "checksum does not match the frame",
    "bad_head_checksum": "header checksum does not match the frame header",
    "bad_head": "frame head byte is wrong",
    "bad_tail": "frame tail bytes are wrong",
    "bad_footer": "frame does not end in the protocol's footer",
    "bad_type": "unknown report type",
    "bad_value": "value not allowed by the profile",
    "bad_length": "data length does not fit the field",
    "truncated": "incomplete frame at the end of the input",
}


class UsageError(Exception):
    """The command was given something it cannot use (exit status 2)."""


def add_decode_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `decode` on the `carewatch` command line; it sets `func` to `decode_main`."""
    parser = subparsers.add_parser(
        "decode",
        help="decode hex frames or adverts with a device profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile", required=True, help=f"device model, one of: {', '.join(available_profiles())}"
    )
    parser.add_argument("hex", nargs="*", help="hex bytes (spaces allowed); none: read stdin")
    parser.add_argument("--address", help="BLE: the sender's MAC, needed with --key")
    parser.add_argument(
        "--key", help="BLE: the 32-hex-digit BTHome key or MiBeacon bindkey of an encrypted device"
    )
    parser.add_argument("--rssi", type=int, help="BLE: the RSSI to report as a reading")
    parser.set_defaults(func=decode_main)


def decode_main(args: argparse.Namespace) -> int:
    stdin = None if args.hex else sys.stdin
    return run_decode(
        args.profile,
        args.hex,
        stdin,
        sys.stdout,
        address=args.address,
        key=args.key,
        rssi=args.rssi,
    )


def run_decode(
    profile: str,
    hex_frames: list[str],
    stdin: TextIO | None,
    out: TextIO,
    *,
    address: str | None = None,
    key: str | None = None,
    rssi: int | None = None,
    err: TextIO | None = None,
) -> int:
    """Decode `hex_frames` (or, if empty, the lines of `stdin`); return the exit status."""
    err = err if err is not None else sys.stderr
    try:
        loaded = _load(profile)
        chunks = list(_chunks(hex_frames, stdin))
        if loaded.connection == "serial":
            return _decode_serial(loaded, chunks, out, err)
        return _decode_ble(loaded, chunks, out, err, _address(address, key), _key(key), rssi)
    except UsageError as exc:
        print(f"carewatch decode: {exc}", file=err)
        return USAGE


def _load(profile: str) -> DeviceProfile:
    try:
        return load_profile(profile)
    except ProfileError as exc:
        raise UsageError(str(exc)) from exc


def _chunks(hex_frames: list[str], stdin: TextIO | None) -> Iterator[tuple[int, bytes]]:
    lines = hex_frames or ([] if stdin is None else [line for line in stdin if line.strip()])
    if not lines:
        raise UsageError("no input: give hex arguments or pipe hex lines on stdin")
    for number, line in enumerate(lines, start=1):
        try:
            yield number, bytes.fromhex(line)
        except ValueError as exc:
            raise UsageError(f"input {number} is not hex ({exc}): {line.strip()!r}") from exc


def _address(address: str | None, key: str | None) -> str:
    if address is None and key is not None:
        raise UsageError("--key needs --address: the MAC is part of the nonce")
    return address if address is not None else NO_ADDRESS


def _key(key: str | None) -> bytes | None:
    if key is None:
        return None
    try:
        raw = bytes.fromhex(key)
    except ValueError as exc:
        raise UsageError(f"--key is not hex: {exc}") from exc
    if len(raw) != 16:
        raise UsageError(f"--key must be 32 hex digits (16 bytes), got {len(raw)} bytes")
    return raw


def _decode_serial(
    profile: DeviceProfile, chunks: list[tuple[int, bytes]], out: TextIO, err: TextIO
) -> int:
    decoder = make_serial_decoder(profile, DEVICE_ID)
    for number, data in chunks:
        before = Counter(decoder.rejected)
        _print(decoder.feed(data, time.time()), out)
        _report(number, decoder.rejected - before, err)
    if decoder.pending:
        _report(len(chunks), Counter(truncated=1), err)
    return REJECTED if decoder.rejected or decoder.pending else OK


def _report(number: int, rejected: Counter[str], err: TextIO) -> None:
    for reason, count in sorted(rejected.items()):
        explanation = EXPLAIN.get(reason, reason)
        print(f"input {number}: rejected {reason} ({count}): {explanation}", file=err)


def _decode_ble(
    profile: DeviceProfile,
    chunks: list[tuple[int, bytes]],
    out: TextIO,
    err: TextIO,
    address: str,
    key: bytes | None,
    rssi: int | None,
) -> int:
    decoder = make_ble_decoder(profile, DEVICE_ID, address, key)
    status = OK
    for number, raw in chunks:
        try:
            adv = parse_advertising_data(address, 0 if rssi is None else rssi, raw)
            observations = decoder.decode(adv, time.time())
        except DecodeError as exc:
            print(f"input {number}: rejected {exc.reason}: {exc.detail}", file=err)
            status = REJECTED
            continue
        _print([obs for obs in observations if rssi is not None or obs.name != "rssi"], out)
    return status


def _print(observations: list[Observation], out: TextIO) -> None:
    for obs in observations:
        item: dict[str, object] = {obs.kind: obs.name}
        if obs.value is not None:
            item["value"] = obs.value
        print(json.dumps(item), file=out)
