"""Bounded parameters of the HTTP API: a number a caller sends is checked for range before the
hub looks anything up with it, so that a wrong number is a 422 that says what is allowed."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path
from pydantic import Field

MAX_RECORD_ID: Final = 2**63 - 1  # the largest row id the store can hold
# Unix seconds from 1970 to the year 2200: any time a record may carry.
MAX_UNIX_TIME: Final = 7_258_118_400.0

RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="a record number (1 to 2^63-1)")]
UnixTime = Annotated[
    float,
    Field(ge=0, le=MAX_UNIX_TIME, allow_inf_nan=False, description="Unix seconds (1970 to 2200)"),
]
