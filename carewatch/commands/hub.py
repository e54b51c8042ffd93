"""`carewatch hub --config FILE`: run the central hub until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import signal
import sys
from pathlib import Path

from hub.app import Hub
from hub.config import HubConfigError, load_hub_config
from hub.core.database import DATABASE_ERRORS
from hub.core.migrations import MigrationError

log = logging.getLogger("carewatch.hub")


async def run_hub(config_path: Path) -> int:
    try:
        config = await asyncio.to_thread(load_hub_config, config_path)
    except HubConfigError as exc:
        print(f"carewatch hub: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, log_what_tasks_wait_on)
    try:
        hub = await Hub.start(config)
    except MigrationError as exc:
        print(f"carewatch hub: cannot use the database: {exc}", file=sys.stderr)
        return 2
    except DATABASE_ERRORS as exc:
        print(f"carewatch hub: cannot open the database: {exc}", file=sys.stderr)
        return 2
    print(f"carewatch hub: console on {hub.url}/", flush=True)
    waiter = asyncio.create_task(hub.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await hub.stop()
    return 0


def add_hub_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hub", help="run the central hub", description="Run the carewatch hub."
    )
    parser.add_argument("--config", required=True, type=Path, help="hub YAML configuration")
    parser.set_defaults(func=lambda args: asyncio.run(run_hub(args.config)))


def log_what_tasks_wait_on() -> None:
    """`kill -USR1 <hub pid>`: log where every task of a hub that seems stuck is waiting."""
    for task in asyncio.all_tasks():
        stack = io.StringIO()
        task.print_stack(limit=12, file=stack)
        log.warning("task %s waits at:\n%s", task.get_name(), stack.getvalue())
