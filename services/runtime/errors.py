"""Errors of the service runtime.

Hierarchy::

    ServiceError                 root of everything a service raises on purpose
    ├── PermanentError           retrying cannot help: the event goes to the dead-letter topic
    │   ├── LifecycleError       start() twice, stop() before start(), ...
    │   └── EventTooLarge        an event over ``contracts.limits.MAX_EVENT_BYTES``: never staged
    └── TransientError           a dependency hiccup: retried (bounded), then dead-lettered
    AlreadyProcessed             not an error: the inbox saw this event id before

Every error carries ``retriable`` so the consumer loop decides commit / retry / dead-letter
from one attribute rather than from exception types scattered over handlers.
"""

from __future__ import annotations

__all__ = [
    "AlreadyProcessed",
    "EventTooLarge",
    "LifecycleError",
    "PermanentError",
    "ServiceError",
    "TransientError",
]


class ServiceError(Exception):
    """Root of the runtime's errors."""

    retriable: bool = False


class PermanentError(ServiceError):
    """The event cannot be handled, now or later."""

    retriable = False


class LifecycleError(PermanentError):
    """A lifecycle method was called in the wrong state."""


class EventTooLarge(PermanentError):
    """An event would exceed the size every broker accepts; it is refused before staging, so
    nothing unsendable is ever committed (the API answers 413)."""


class TransientError(ServiceError):
    """A dependency failed in a way that may pass; the consumer retries, bounded."""

    retriable = True


class AlreadyProcessed(Exception):
    """The inbox already holds this event id: its effect happened, acknowledge and go on."""
