"""API settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.runtime.settings import RuntimeSettings

__all__ = ["ApiSettings"]


class ApiSettings(RuntimeSettings):
    """Where the HTTP gateway listens, and request limits."""

    api_host: str = "127.0.0.1"
    api_port: int = 8765
    #: largest single upload (snapshot blob or datastore object) accepted
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    #: snapshot manifests kept in memory (immutable, so cached by digest; bounded)
    manifest_cache_size: int = Field(default=256, gt=0)
    #: largest JSON request body accepted (a run request, a snapshot delta, a registration);
    #: bounded while it streams, after the token check
    max_json_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    #: directories under which local datastores may be registered (``HEADRACE_DATASTORE_ROOTS``
    #: as a JSON list); empty means the state directory's ``datastores/``
    datastore_roots: list[Path] = Field(default_factory=list)

    @property
    def allowed_datastore_roots(self) -> list[Path]:
        """Where local datastores may be: a local datastore is a directory every token with
        ``read`` can list and read through the API, so it must not be just anywhere."""
        return self.datastore_roots or [self.home / "datastores"]
