"""``Datastore``: a named object store of the workspace, reached through the API."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from rich.progress import Progress

from headrace.errors import ApiError, NotFoundError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["Datastore"]


def _join(*parts: str | None) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class Datastore:
    """A registered datastore (``Datastore(ws, "workspaceblobstore")``)."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        try:
            info = workspace.client.get(f"/datastores/{quote(name)}")
        except NotFoundError as exc:
            known = [d["name"] for d in workspace.client.get("/datastores")]
            raise NotFoundError(
                404, f"unknown datastore {name!r}; registered: {', '.join(known) or 'none'}"
            ) from exc
        self.workspace = workspace
        self.name = name
        self.datastore_type = info["kind"]

    def _put(self, key: str, data: bytes, overwrite: bool) -> None:
        self.workspace.client.put_bytes(
            f"/datastores/{quote(self.name)}/objects/{quote(key)}",
            data,
            overwrite=str(overwrite).lower(),
        )

    def upload_files(
        self,
        files: Iterable[str | os.PathLike[str]],
        relative_root: str | os.PathLike[str] | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> list[str]:
        """Upload files under ``target_path``; each keeps its path relative to
        ``relative_root`` (default: just its name). Returns the keys written."""
        paths = [Path(f) for f in files]
        keys = []
        with Progress(disable=not show_progress, transient=True) as progress:
            task = progress.add_task(
                f"uploading to {self.name}", total=sum(p.stat().st_size for p in paths)
            )
            for path in paths:
                rel = path.relative_to(relative_root).as_posix() if relative_root else path.name
                key = _join(target_path, rel)
                try:
                    self._put(key, path.read_bytes(), overwrite)
                except ApiError as exc:
                    if exc.status == 409:
                        raise ApiError(
                            409,
                            f"{key!r} exists on datastore {self.name!r}; pass "
                            "overwrite=True to replace it",
                        ) from exc
                    raise
                keys.append(key)
                progress.advance(task, path.stat().st_size)
        return keys

    def upload(
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> list[str]:
        """Upload a directory tree under ``target_path``."""
        root = Path(src_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return self.upload_files(
            files,
            relative_root=root,
            target_path=target_path,
            overwrite=overwrite,
            show_progress=show_progress,
        )

    def download(
        self,
        target_path: str | os.PathLike[str],
        prefix: str | None = None,
        overwrite: bool = True,
        show_progress: bool = True,
    ) -> int:
        """Download objects under ``prefix`` into ``target_path``; returns how many."""
        objects = self.workspace.client.get(
            f"/datastores/{quote(self.name)}/objects", prefix=prefix or ""
        )
        dest = Path(target_path)
        count = 0
        for obj in objects:
            out = dest / obj["path"]
            if out.exists() and not overwrite:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(
                self.workspace.client.get_bytes(
                    f"/datastores/{quote(self.name)}/objects/{quote(obj['path'])}"
                )
            )
            count += 1
        return count

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r}, type={self.datastore_type!r})"
