"""Image builder settings."""

from __future__ import annotations

from services.runtime.settings import RuntimeSettings

__all__ = ["ImageBuilderSettings"]


class ImageBuilderSettings(RuntimeSettings):
    """No knobs of its own yet; custom environments arrive with the image builder issue."""
