"""The opt-in v1 mode: unmodified ``azureml.*`` imports resolve to headrace's modules.

``headrace run-v1 pipeline.py`` (or a notebook) installs ``AzuremlAliasFinder`` in that process
only, so ``from azureml.core import Workspace`` gives ``headrace.core.Workspace``; nothing is
installed under the name ``azureml``, and a process that did not ask sees no alias. Why a
one-to-one mapping works: headrace's SDK follows the azureml module tree
(``azureml.pipeline.steps`` is ``headrace.pipeline.steps``), so ``azureml.X`` is
``headrace.X``. A v1 path headrace lacks fails with ``V1ModuleNotProvided`` (an
``ImportError``, so code that guards optional imports keeps working), naming the module and
where to look, never with a bare "No module named".
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import runpy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from headrace.errors import HeadraceError

__all__ = [
    "AzuremlAliasFinder",
    "NotebookCell",
    "V1ModuleNotProvided",
    "install",
    "notebook_cells",
    "notebook_source",
    "run_v1",
]

_PREFIX = "azureml"


class V1ModuleNotProvided(ModuleNotFoundError, HeadraceError):
    """An ``azureml.*`` module that headrace does not provide."""


class _AliasLoader(importlib.abc.Loader):
    """Loads ``azureml.X`` as the already imported ``headrace.X`` (the same module object)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the headrace module was executed when it was imported."""


class AzuremlAliasFinder(importlib.abc.MetaPathFinder):
    """Resolves ``azureml`` and ``azureml.*`` to ``headrace`` and ``headrace.*``."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _PREFIX and not fullname.startswith(_PREFIX + "."):
            return None
        real = "headrace" + fullname[len(_PREFIX) :]
        if importlib.util.find_spec(real) is None:
            raise V1ModuleNotProvided(
                f"headrace does not provide Azure ML's module {fullname!r} (no {real!r}); "
                "docs/compat.md lists what exists and what to use instead",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=True)


def install() -> AzuremlAliasFinder:
    """Put the alias finder first on ``sys.meta_path`` of this process (idempotent)."""
    for finder in sys.meta_path:
        if isinstance(finder, AzuremlAliasFinder):
            return finder
    finder = AzuremlAliasFinder()
    sys.meta_path.insert(0, finder)
    return finder


@dataclass(frozen=True)
class NotebookCell:
    """One code cell, ready to run: its source, or the file a ``%%writefile`` cell writes."""

    index: int
    source: str
    writes: Path | None = None


def notebook_cells(path: Path) -> tuple[list[NotebookCell], list[str]]:
    """A notebook's code cells, and the IPython-only lines left out of them.

    ``%%writefile FILE`` cells (how notebooks create their step scripts) write their body to
    FILE, as IPython does. Other lines starting with ``%`` or ``!`` (magics, shell escapes)
    have no Python meaning: they are commented out and listed so the user sees what did not
    run.
    """
    try:
        doc = json.loads(path.read_text())
        raw_cells = doc["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HeadraceError(f"{path} is not a Jupyter notebook: {exc}") from exc
    cells: list[NotebookCell] = []
    skipped: list[str] = []
    for index, cell in enumerate(raw_cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        first, _, body = text.partition("\n")
        if first.startswith("%%writefile"):
            target = first.split(maxsplit=1)[1].strip() if len(first.split()) > 1 else ""
            if not target:
                raise HeadraceError(f"{path}: cell {index}: %%writefile without a file name")
            cells.append(NotebookCell(index, body, writes=Path(target)))  # as IPython: cwd
            continue
        lines = []
        for line in text.splitlines():
            if line.lstrip().startswith(("%", "!")):
                skipped.append(line.strip())
                lines.append("# (IPython only, not run) " + line)
            else:
                lines.append(line)
        cells.append(NotebookCell(index, "\n".join(lines) + "\n"))
    return cells, skipped


def notebook_source(path: Path) -> tuple[str, list[str]]:
    """A notebook's Python cells as one script (``%%writefile`` cells left out), and the
    IPython-only lines left out of it."""
    cells, skipped = notebook_cells(path)
    return "\n".join(c.source for c in cells if c.writes is None), skipped


def run_v1(path: Path, args: Sequence[str] = ()) -> None:
    """Run a v1 script or notebook with ``azureml.*`` resolving to headrace, as ``__main__``.

    The script's directory comes first on ``sys.path`` and ``sys.argv`` is what the script
    would see, as with ``python script.py args``.
    """
    install()
    path = path.resolve()
    sys.argv = [str(path), *args]
    sys.path.insert(0, str(path.parent))
    if path.suffix == ".ipynb":
        cells, skipped = notebook_cells(path)
        for line in skipped:
            print(f"headrace run-v1: skipped IPython-only line: {line}", file=sys.stderr)
        namespace = {"__name__": "__main__", "__file__": str(path)}
        for cell in cells:
            if cell.writes is not None:
                cell.writes.parent.mkdir(parents=True, exist_ok=True)
                cell.writes.write_text(cell.source)
                continue
            # each cell compiled under its own name, so a traceback says which cell failed
            code = compile(cell.source, f"{path} [cell {cell.index}]", "exec")
            exec(code, namespace)  # noqa: S102 - running the user's own notebook is the point
    else:
        runpy.run_path(str(path), run_name="__main__")
