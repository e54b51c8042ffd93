"""One log format for every carewatch process: time, level, logger, message, then context.

Context fields passed as `extra` (site, gateway, device, bed, …) are appended as key=value, so
journal lines can be searched by any of them.
"""

from __future__ import annotations

import logging
from typing import Final

CONTEXT_FIELDS: Final = ("site", "zone", "gateway", "device", "bed", "rule", "alert_id")


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None and f"{name}=" not in line
        ]
        return f"{line} [{' '.join(pairs)}]" if pairs else line


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("amqtt", "transitions", "uvicorn.error", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
