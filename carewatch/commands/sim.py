"""`carewatch sim`: byte-exact device simulators for installers and tests.

carewatch sim mr60fda1 --link /tmp/ttyRADAR0      # then type: fall, present, absent, …
carewatch sim mr60bha2 --link /tmp/ttyRADAR1      # serial: mr60fda1, mr60bha1, mr60fda2,
                                                  #         mr60bha2, ld2410
carewatch sim button --socket /run/carewatch/ble-air.sock --address B4:35:22:F5:3D:A4
carewatch sim door --socket … --address … [--closed] [--key HEX --counter N]
carewatch sim pressure-mat --socket … --address … [--clear] [--key HEX --counter N]
carewatch sim scenario night_bed_exit_not_back [--speed 600]   # a resident's night, end to end
carewatch sim fleet --beds 10000 [--duration 30] [--registry-out DIR]   # load (docs/fleet.md)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from simulators import bthome, ld2410, mr60bha1, mr60fda1, tinyframe, xiaomi
from simulators.ble_air import BLEAirSender
from simulators.serial_pty import SerialPtySimulator

SERIAL: Final[dict[str, tuple[str, Mapping[str, bytes]]]] = {
    "mr60fda1": ("an MR60FDA1 fall radar (MicRadar)", mr60fda1.FRAMES),
    "mr60bha1": ("an MR60BHA1 breathing/heart-rate radar (MicRadar)", mr60bha1.FRAMES),
    "mr60fda2": ("an MR60FDA2 fall radar (TinyFrame)", tinyframe.FDA2_FRAMES),
    "mr60bha2": ("an MR60BHA2 breathing/heart-rate radar (TinyFrame)", tinyframe.BHA2_FRAMES),
    "ld2410": ("an HLK-LD2410 presence radar", ld2410.FRAMES),
}
BLE: Final[dict[str, str]] = {
    "button": "a BTHome call button press (Shelly BLU Button1)",
    "smoke": "a BTHome smoke detector",
    "door": "a BTHome door/window contact (Shelly BLU Door/Window)",
    "motion": "a BTHome motion sensor (Shelly BLU Motion)",
    "xiaomi-smoke": "a MiBeacon smoke detector (JTYJGD03MI)",
    "pressure-mat": "a MiBeacon pressure mat (Linptech PS1BB)",
}


def run_serial(args: argparse.Namespace) -> int:
    with SerialPtySimulator(args.frames, link=args.link) as device:
        where = f"{device.port} (linked as {args.link})" if args.link else device.port
        print(f"{args.simulator} simulator on {where}", flush=True)
        names = ", ".join(device.frames)
        print(f"type a frame name and Enter: {names}; Ctrl-D to stop", flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name:
                continue
            if name not in device.frames:
                print(f"unknown frame {name!r}; use one of {names}", file=sys.stderr)
                continue
            device.send(name)
            print(f"sent {name}: {device.frames[name].hex(' ')}", flush=True)
    return 0


def run_ble(args: argparse.Namespace) -> int:
    advert = _advert(args)
    try:
        with BLEAirSender(args.socket) as air:
            air.send(args.address, advert, rssi=args.rssi)
    except OSError as exc:
        print(
            f"cannot reach the edge agent's simulated BLE socket {args.socket}: {exc.strerror}."
            " Is the agent running with ble.backend: simulated?",
            file=sys.stderr,
        )
        return 1
    print(f"sent {args.kind} advert from {args.address}: {advert.hex(' ')}")
    return 0


def _advert(args: argparse.Namespace) -> bytes:
    key: bytes | None = args.key
    on = not args.clear
    if args.kind in ("xiaomi-smoke", "pressure-mat"):
        mibeacon = xiaomi.smoke if args.kind == "xiaomi-smoke" else xiaomi.pressure
        return mibeacon(args.address, args.counter, on, key=key)
    encryption = None if key is None else bthome.Encryption(key, args.address, args.counter)
    if args.kind == "button":
        return bthome.button_press(args.packet_id, args.battery, args.event, encryption=encryption)
    sensor = _BTHOME_SENSORS[args.kind]
    return sensor(args.packet_id, on, args.battery, encryption=encryption)


_BTHOME_SENSORS: Final = {
    "smoke": bthome.smoke,
    "door": bthome.door_window,
    "motion": bthome.motion,
}


def _key(text: str) -> bytes:
    key = bytes.fromhex(text)
    if len(key) != 16:
        raise argparse.ArgumentTypeError("a key is 32 hex digits (16 bytes)")
    return key


def add_sim_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sim", help="device simulators")
    kinds = parser.add_subparsers(dest="simulator", required=True, metavar="DEVICE")
    for name, (description, frames) in SERIAL.items():
        serial = kinds.add_parser(name, help=f"{description} behind a pseudo-terminal")
        serial.add_argument("--link", type=Path, default=None, help="symlink to create to the port")
        serial.set_defaults(func=run_serial, frames=frames)
    for kind, description in BLE.items():
        _add_ble_parser(kinds.add_parser(kind, help=f"send one advert of {description}"), kind)
    _add_scenario_parser(kinds)
    from carewatch.commands.fleet import add_fleet_parser  # here: device simulators skip aiomqtt

    add_fleet_parser(kinds)


def _add_scenario_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scenario = kinds.add_parser(
        "scenario",
        help="play a resident scenario through an embedded broker, the hub and an edge agent",
        description="Play a scenario file (docs/scenarios.md) and print its steps and alerts.",
    )
    scenario.add_argument(
        "file", help="a scenario file, or the name of one in simulators/scenarios/"
    )
    scenario.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="simulated seconds per second (default: the file's)",
    )
    scenario.set_defaults(func=_run_scenario)


def _speed(text: str) -> float:
    speed = float(text)
    if not 0 < speed <= 100_000:
        raise argparse.ArgumentTypeError("a speed is a number above 0 and at most 100000")
    return speed


def _run_scenario(args: argparse.Namespace) -> int:
    from carewatch.commands.scenario import run_scenario_command  # the hub, only when asked for

    return run_scenario_command(args)


def _add_ble_parser(sub: argparse.ArgumentParser, kind: str) -> None:
    sub.add_argument(
        "--socket",
        type=Path,
        required=True,
        help="the agent's simulated BLE socket (ble.socket in its config)",
    )
    sub.add_argument("--address", required=True, help="the device's BLE address")
    sub.add_argument("--packet-id", type=int, default=1, choices=range(256), metavar="0-255")
    sub.add_argument("--battery", type=int, default=90, choices=range(101), metavar="0-100")
    sub.add_argument("--rssi", type=int, default=-60)
    sub.add_argument("--key", type=_key, default=None, help="encrypt with this 32-hex-digit key")
    sub.add_argument("--counter", type=int, default=1, help="encryption counter (with --key)")
    if kind == "button":
        sub.add_argument(
            "--event",
            default="press",
            choices=["press", "double_press", "triple_press", "long_press"],
        )
    else:
        sub.add_argument(
            "--clear", action="store_true", help="closed / no smoke / no motion / no pressure"
        )
    sub.set_defaults(func=run_ble, kind=kind, clear=False)
