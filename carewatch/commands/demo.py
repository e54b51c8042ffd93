"""`carewatch demo`: run a simulated care home end to end (carewatch/demo/, docs/demo.md)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
import tempfile
from pathlib import Path

from carewatch.demo.options import LOG_FILE, DemoOptions
from carewatch.demo.run import PLANNED_STOP, log_to_file, run_demo


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated care home end to end",
        description="Run an embedded broker, the hub, edge agents and simulated devices.",
    )
    parser.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the console listens on (default 127.0.0.1, this machine only); "
        "0.0.0.0 lets a tablet or phone on your network open it (prints what that exposes)",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="stop by itself after this many seconds"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where to keep the demo's databases and log (default: a new temp folder)",
    )
    parser.add_argument(
        "--allow-push-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also send Web Push to a push service at HOST (a lab's own, e.g. 127.0.0.1 for "
        "a local one); the browsers' own push services are always allowed",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show the logs here instead of writing them to {LOG_FILE} in the data folder",
    )
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        print("carewatch demo: --duration must be a positive number of seconds", file=sys.stderr)
        return 2
    workdir = args.data_dir or Path(tempfile.mkdtemp(prefix="carewatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.verbose:
        log_to_file(workdir / LOG_FILE)
    logging.getLogger("edge.publisher").addFilter(PLANNED_STOP)
    options = DemoOptions(
        args.host, args.port, args.duration, workdir, args.verbose, tuple(args.allow_push_host)
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await run_demo(options, stop)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(
                    f"carewatch demo: port {args.port} is in use; try --port 8081", file=sys.stderr
                )
                return 2
            if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
                print(
                    f"carewatch demo: cannot listen on {args.host!r}: {exc.strerror or exc}; "
                    "give an IPv4 address of this machine, or 0.0.0.0 for all of them",
                    file=sys.stderr,
                )
                return 2
            raise

    return asyncio.run(main())
