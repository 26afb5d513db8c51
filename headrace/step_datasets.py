"""Datasets as a step sees them: ``Run.get_context().input_datasets[name]``.

The data services bound the dataset's files into the step's scratch before it started (mounted
or downloaded); these objects read them there. Standard library only at import (pandas is
imported by ``to_pandas_dataframe`` alone), because every step imports the run context.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headrace.tables import TableSource

__all__ = ["StepFileDataset", "StepTabularDataset", "step_dataset"]


class _StepDataset:
    def __init__(self, input_name: str, info: dict[str, Any]) -> None:
        self.input_name = input_name
        self.name: str | None = info.get("name")
        self.version: int | None = info.get("version")
        self.options: dict[str, Any] = dict(info.get("options") or {})
        self._bound = list(info.get("paths", []))
        self._roots = [Path(p["local"]) for p in self._bound]

    def _located(self) -> list[TableSource]:
        """Every file of the dataset as (datastore, path on it, local file), in a stable order
        (path by path, then by name)."""
        out: list[TableSource] = []
        for bound in self._bound:
            root, datastore, path = Path(bound["local"]), bound["datastore"], bound["path"]
            if root.is_dir():
                for p in sorted(p for p in root.rglob("*") if p.is_file()):
                    rel = p.relative_to(root).as_posix()
                    out.append((datastore, f"{path.rstrip('/')}/{rel}", p))
            elif root.exists():
                out.append((datastore, path, root))
        return out

    def _files(self) -> list[Path]:
        return [Path(local) for _, _, local in self._located() if isinstance(local, Path)]

    def to_path(self) -> list[str]:
        """The local paths of the dataset's files."""
        return [str(p) for p in self._files()]

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(input={self.input_name!r}, name={self.name!r}, version={self.version!r})"


class StepTabularDataset(_StepDataset):
    def to_pandas_dataframe(self) -> Any:
        """All delimited files, concatenated, read with the dataset's separator and header."""
        from headrace.errors import HeadraceError
        from headrace.tables import read_delimited

        files = self._located()
        if not files:
            raise HeadraceError(f"dataset input {self.input_name!r} has no files")

        def error(message: str) -> Exception:
            return HeadraceError(f"dataset input {self.input_name!r}: {message}")

        return read_delimited(files, self.options, error)


class StepFileDataset(_StepDataset):
    def download(self, target_path: str | Path | None = None, overwrite: bool = False) -> list[str]:
        """Copy the files to ``target_path`` (their bound paths when None); the local paths."""
        if target_path is None:
            return self.to_path()
        target = Path(target_path)
        out = []
        for root in self._roots:
            for f in [root] if root.is_file() else sorted(root.rglob("*")):
                if not f.is_file():
                    continue
                dest = target / (f.name if f == root else f.relative_to(root))
                if dest.exists() and not overwrite:
                    raise FileExistsError(f"{dest} exists; pass overwrite=True")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
                out.append(str(dest))
        return out

    @property
    def mount_point(self) -> str:
        """Where the files are bound: the path itself for one path, else the directory
        holding one directory per path (what the step's argument for the input is)."""
        return str(self._roots[0]) if len(self._roots) == 1 else str(self._roots[0].parent)

    @contextlib.contextmanager
    def mount(self) -> Iterator[_Mounted]:
        """The files where they are bound (already mounted or downloaded for the step)."""
        yield _Mounted(self.mount_point)


class _Mounted:
    def __init__(self, mount_point: str) -> None:
        self.mount_point = mount_point


def step_dataset(input_name: str, info: dict[str, Any]) -> _StepDataset:
    cls = StepTabularDataset if info.get("kind") == "tabular" else StepFileDataset
    return cls(input_name, info)
