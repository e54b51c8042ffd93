"""The one mapping of domain errors to HTTP answers: a `DomainError` (hub/core/errors.py) is
answered with its `status`, its message as `detail` and any `extra` fields."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hub.core.errors import DomainError


def answer_domain_errors(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _answer)


async def _answer(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse({"detail": str(exc), **exc.extra()}, status_code=exc.status)
