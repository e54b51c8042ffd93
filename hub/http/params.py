"""Bounded parameters of the HTTP API: a number a caller sends is checked for range before the
hub looks anything up with it, so that a wrong number is a 422 that says what is allowed.
Times in bodies use the wire's `Time` (contract/wire.py): finite Unix seconds before 2200."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path

MAX_RECORD_ID: Final = 2**63 - 1  # the largest row id the store can hold

RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="a record number (1 to 2^63-1)")]
