"""Structured logging for the edge agent: every line names its site, gateway and device.

The context travels twice: as `key=value` pairs appended to the message, so a plain journal
line is greppable (`journalctl -u carewatch-edge | grep device=radar-b12`), and as `extra`
attributes on the record, so a JSON formatter can emit them as fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

_Fields = Mapping[str, object]


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A LoggerAdapter whose context (site, gateway, device, …) is rendered into each line."""

    def __init__(self, logger: logging.Logger, fields: _Fields) -> None:
        super().__init__(logger, dict(fields))
        self._suffix = " ".join(f"{key}={value}" for key, value in fields.items())

    @property
    def fields(self) -> dict[str, object]:
        return dict(self.extra or {})

    def bind(self, **fields: object) -> ContextLogger:
        """A logger with the same context plus `fields`."""
        return ContextLogger(self.logger, {**self.fields, **fields})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        if self._suffix:
            msg = f"{msg} [{self._suffix}]"
        return msg, kwargs


def context_logger(name: str, **fields: object) -> ContextLogger:
    return ContextLogger(logging.getLogger(name), fields)
