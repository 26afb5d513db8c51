"""Image builder settings."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from services.runtime.settings import RuntimeSettings

__all__ = ["ImageBuilderSettings"]


def _default_uv() -> Path:
    """uv next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else beside


class ImageBuilderSettings(RuntimeSettings):
    """Where uv is, and where builds and uv's cache live.

    uv's cache defaults to uv's own (``$UV_CACHE_DIR`` or ``~/.cache/uv``), shared by every
    stack of the user, so a second installation does not download the same wheels again.
    uv hard-links from it when the build directory is on the same filesystem, else copies.
    """

    uv_path: Path = _default_uv()
    build_dir: Path | None = None
    uv_cache_dir: Path | None = None

    @property
    def builds(self) -> Path:
        return self.build_dir or self.home / "builds"

    @property
    def uv_cache(self) -> Path:
        if self.uv_cache_dir is not None:
            return self.uv_cache_dir
        return Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
