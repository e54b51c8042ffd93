"""The `carewatch` command: one entry point, one subcommand per job.

Only the chosen subcommand's module is imported: `carewatch edge` on a Raspberry Pi must not
load the hub's web stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Final

from carewatch.logging_setup import configure_logging

# name: (module, function that adds the subcommand's parser, one-line help)
COMMANDS: Final[dict[str, tuple[str, str, str]]] = {
    "demo": ("carewatch.demo", "add_demo_parser", "run a simulated care home end to end"),
    "hub": ("carewatch.hub_cmd", "add_hub_parser", "run the central hub"),
    "edge": ("edge.agent", "add_edge_parser", "run the gateway agent"),
    "decode": ("carewatch.decode_cmd", "add_decode_parser", "decode captured frames or adverts"),
    "sim": ("carewatch.sim_cmd", "add_sim_parser", "device simulators"),
    "report": ("carewatch.report_cmd", "add_report_parser", "response-time figures"),
    "registry": ("carewatch.registry_cmd", "add_registry_parser", "sites, beds, residents"),
    "walktest": ("carewatch.walktest_cmd", "add_walktest_parser", "walk test every device"),
    # provisioning (carewatch/provision_cmd.py)
    "provision": ("carewatch.provision_cmd", "add_provision_parser", "set up sites and gateways"),
    "users": ("carewatch.users_cmd", "add_users_parser", "users, passwords and API tokens"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carewatch",
        description="carewatch: a 24-hour safety watch for care homes and family care beds.",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    for name, (module, function, summary) in COMMANDS.items():
        if name == chosen:
            getattr(importlib.import_module(module), function)(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(arguments).parse_args(arguments)
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
