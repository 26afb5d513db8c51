"""API errors, each mapped to an HTTP status with a message saying what to fix.

Hierarchy::

    ApiError (PermanentError)          400
    ├── Forbidden                      403 (the token is fine; the target is not writable)
    ├── NotFound                       404
    ├── Conflict                       409
    └── Invalid                        422 (``problems`` lists every issue)
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["ApiError", "Conflict", "Forbidden", "Invalid", "NotFound"]


class ApiError(PermanentError):
    status = 400


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    status = 422

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))
