"""The errors of datastore access, each saying what to check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.runtime.errors import PermanentError

if TYPE_CHECKING:
    pass


class UnknownDatastore(PermanentError):
    """No datastore has this name."""


class InvalidDatastore(PermanentError):
    """A datastore's kind or config is not usable; the message names the field to fix."""


class DatastoreError(PermanentError):
    """An object-store operation failed (missing object, refused credentials, unreachable
    endpoint). The message names the datastore and the key and never holds a credential."""


class ObjectNotFound(DatastoreError, FileNotFoundError):
    """The object does not exist. Also a ``FileNotFoundError``, so callers written against the
    local kind (``except FileNotFoundError``) keep working for every kind."""


class InvalidKey(DatastoreError, ValueError):
    """The key escapes the datastore's root. Also a ``ValueError``, as ``safe_relative_path``
    raised before, so existing callers that map ``ValueError`` to a client error still do."""


# --------------------------------------------------------------------------- configs
