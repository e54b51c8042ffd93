"""The `carewatch` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from carewatch.logging_setup import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carewatch",
        description="carewatch: a 24-hour safety watch for care homes and family care beds.",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from carewatch.decode_cmd import add_decode_parser
    from carewatch.demo import add_demo_parser
    from carewatch.hub_cmd import add_hub_parser
    from carewatch.sim_cmd import add_sim_parser
    from edge.agent import add_edge_parser

    add_demo_parser(subparsers)
    add_hub_parser(subparsers)
    add_edge_parser(subparsers)
    add_decode_parser(subparsers)
    add_sim_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
