"""The kinds of refusal a domain error can be, each with its HTTP answer (hub/http/errors.py).

A folder's errors derive from these, so routes raise them as they are and one handler answers
them: not found 404, conflict 409, forbidden 403, anything else refused 422.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the hub refuses for a reason the caller can act on; `status` is its answer."""

    status: int = 422

    def extra(self) -> dict[str, Any]:
        """More of the answer's body than its `detail` (a refused import's `problems`)."""
        return {}


class NotFoundError(DomainError):
    status = 404


class ConflictError(DomainError):
    status = 409


class ForbiddenError(DomainError):
    status = 403
