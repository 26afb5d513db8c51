"""Errors of the SDK.

Hierarchy::

    HeadraceError                 root: everything the SDK raises on purpose
    ├── ConfigError               no workspace config found
    ├── ApiUnavailableError       the API cannot be reached (stack not started, wrong URL)
    ├── ApiError                  the API answered with an error (status, message)
    │   ├── NotFoundError         404: unknown run, step, datastore, ...
    │   ├── PipelineValidationError   422: the pipeline cannot run; ``problems`` lists why
    │   └── RequestTooLargeError  413: the request is over a size limit (also checked locally)
    ├── SnapshotError             the source directory cannot be snapshotted
    └── NotSupportedError         an Azure ML feature headrace does not provide; the message
                                  names the feature and what to use instead

The Azure ML exception types ported code catches (``ComputeTargetException`` and the rest of
``azureml.exceptions``) are in ``headrace.exceptions``, also under ``HeadraceError``.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "ConfigError",
    "HeadraceError",
    "NotFoundError",
    "NotSupportedError",
    "PipelineValidationError",
    "RequestTooLargeError",
    "SnapshotError",
]


class HeadraceError(Exception):
    """Root of the SDK's errors."""


class ConfigError(HeadraceError):
    """No workspace configuration could be found."""


class ApiUnavailableError(HeadraceError):
    """The API could not be reached at all; the message says how to start the stack."""


class ApiError(HeadraceError):
    """The API refused a request; the message says what to fix."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"{status}: {message}")


class NotFoundError(ApiError):
    """The API does not know the object asked for."""


class PipelineValidationError(ApiError):
    """The pipeline was rejected at submit; nothing was started."""

    def __init__(self, status: int, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(status, "the pipeline cannot run:\n  - " + "\n  - ".join(problems))


class RequestTooLargeError(ApiError):
    """The request is larger than headrace accepts; nothing was stored or started.

    Raised by the SDK before sending when it can tell, and for the API's 413 otherwise."""


class SnapshotError(HeadraceError):
    """A source directory cannot be snapshotted (a link escaping it, a missing script, ...)."""


class NotSupportedError(HeadraceError):
    """An Azure ML v1 feature that headrace does not provide.

    Why a type of its own: ported code should stop at the first call headrace cannot honour,
    with a message naming the Azure feature and the headrace way to get the same result,
    rather than fail later on an internal object or silently do something else."""

    def __init__(self, feature: str, alternative: str) -> None:
        self.feature = feature
        self.alternative = alternative
        super().__init__(f"{feature} is not supported by headrace; {alternative}")
