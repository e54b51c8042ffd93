"""`carewatch sim`: byte-exact device simulators for installers and tests.

carewatch sim mr60fda1 --link /tmp/ttyRADAR0      # then type: fall, present, absent, …
carewatch sim button --socket /run/carewatch/ble-air.sock --address B4:35:22:F5:3D:A4
carewatch sim smoke --socket /run/carewatch/ble-air.sock --address A4:C1:38:00:00:64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulators.ble_air import BLEAirSender
from simulators.bthome import button_press, smoke
from simulators.mr60fda1 import FRAMES, MR60FDA1Simulator


def run_mr60fda1(args: argparse.Namespace) -> int:
    with MR60FDA1Simulator(link=args.link) as radar:
        where = f"{radar.port} (linked as {args.link})" if args.link else radar.port
        print(f"MR60FDA1 simulator on {where}", flush=True)
        print(f"type a frame name and Enter: {', '.join(FRAMES)}; Ctrl-D to stop", flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name:
                continue
            if name not in FRAMES:
                print(f"unknown frame {name!r}; use one of {', '.join(FRAMES)}", file=sys.stderr)
                continue
            radar.send(name)
            print(f"sent {name}: {FRAMES[name].hex(' ')}", flush=True)
    return 0


def run_ble(args: argparse.Namespace) -> int:
    if args.kind == "button":
        advert = button_press(args.packet_id, args.battery, args.event)
    else:
        advert = smoke(args.packet_id, not args.clear, args.battery)
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


def add_sim_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sim", help="device simulators")
    kinds = parser.add_subparsers(dest="simulator", required=True, metavar="DEVICE")
    radar = kinds.add_parser("mr60fda1", help="an MR60FDA1 fall radar behind a pseudo-terminal")
    radar.add_argument("--link", type=Path, default=None, help="symlink to create to the port")
    radar.set_defaults(func=run_mr60fda1)
    for kind in ("button", "smoke"):
        sub = kinds.add_parser(kind, help=f"send one BTHome {kind} advert to an edge agent")
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
        if kind == "button":
            sub.add_argument(
                "--event",
                default="press",
                choices=["press", "double_press", "triple_press", "long_press"],
            )
        else:
            sub.add_argument("--clear", action="store_true", help="smoke cleared, not detected")
        sub.set_defaults(func=run_ble, kind=kind)
