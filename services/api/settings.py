"""API settings."""

from __future__ import annotations

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
