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

# name: one-line help; the subcommand is carewatch/commands/<name>.py, its parser added by
# its add_<name>_parser.
COMMANDS: Final[dict[str, str]] = {
    "demo": "run a simulated care home end to end",
    "hub": "run the central hub",
    "edge": "run the gateway agent",
    "decode": "decode captured frames or adverts",
    "sim": "device simulators",
    "report": "response-time figures",
    "registry": "sites, beds, residents",
    "walktest": "walk test every device",
    "provision": "set up sites and gateways",
    "users": "users, passwords and API tokens",
    "db": "the hub's database: status, migrate, copy, backup",
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
    for name, summary in COMMANDS.items():
        if name == chosen:
            module = importlib.import_module(f"carewatch.commands.{name}")
            getattr(module, f"add_{name}_parser")(subparsers)
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
