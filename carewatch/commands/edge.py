"""`carewatch edge --config FILE`: run the gateway agent until SIGINT/SIGTERM.

Imports only the edge (its arguments are the agent's own, shared with `python -m edge.agent`),
so on a Raspberry Pi `carewatch edge` loads neither the hub nor its web stack.
"""

from __future__ import annotations

import argparse

from edge.agent import add_agent_arguments


def add_edge_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `edge --config FILE [--log-level LEVEL]`; sets `func` to run it (returns exit code)."""
    parser = subparsers.add_parser(
        "edge", help="run the gateway agent", description="Run the carewatch edge agent."
    )
    add_agent_arguments(parser)
