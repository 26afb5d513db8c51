"""Artifact uploader settings."""

from __future__ import annotations

from services.runtime.settings import RuntimeSettings

__all__ = ["ArtifactUploaderSettings"]


class ArtifactUploaderSettings(RuntimeSettings):
    """Whether scratch is cleaned once an attempt's artifacts are committed."""

    keep_scratch: bool = False
