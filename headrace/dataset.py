"""``Dataset``: versioned data on datastores, as Azure ML's ``TabularDataset``/``FileDataset``.

A dataset is lazy, as in Azure ML: ``Dataset.Tabular.from_delimited_files(...)`` and
``Dataset.File.from_files(...)`` only record a definition (which ``(datastore, path)`` pairs,
how to parse them) and talk to no one. Bytes move when they are asked for
(``to_pandas_dataframe``, ``download``, ``to_path``), and ``register`` sends the definition to
the API, which records the content identity (size and ETag of every object) and numbers the
version. Why lazy: a pipeline script builds its datasets before it submits; it must not
download gigabytes to describe an input.

Reading goes through the API's object routes, so it works the same for every datastore kind
and the client never needs the store's credentials.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from headrace.core.datastore import Datastore
from headrace.errors import HeadraceError
from headrace.tables import read_delimited

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = [
    "Dataset",
    "DatasetConsumptionConfig",
    "DatasetError",
    "FileDataset",
    "FileDatasetFactory",
    "TabularDataset",
    "TabularDatasetFactory",
]

#: One ``(datastore, path)`` pair; the datastore as a ``Datastore`` or by name.
PathPair = tuple[Datastore | str, str]
PathArg = PathPair | Sequence[PathPair]
Mode = Literal["direct", "mount", "download"]

_D = TypeVar("_D", bound="AbstractDataset")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatasetError(HeadraceError):
    """A dataset cannot be built or read; the message names the datastore and path."""


@dataclass(frozen=True)
class _Ref:
    datastore: str
    path: str


@dataclass(frozen=True)
class _Object:
    datastore: str
    key: str
    #: Path below the dataset's root: the key below a prefix path, or a file's name.
    relative: str
    #: Size at registration, when known (registered datasets).
    size: int | None


def _normalise(path: str) -> str:
    """A datastore-relative path: leading ``/`` allowed (as in Azure ML), ``..`` refused."""
    if not isinstance(path, str):
        raise DatasetError(f"a dataset path must be a string, not {type(path).__name__}")
    clean = path.strip().strip("/")
    parts = PurePosixPath(clean).parts
    if not clean or any(p in ("..", ".") for p in parts) or "\\" in clean:
        raise DatasetError(
            f"path {path!r} must name an object or a prefix inside the datastore, without "
            "'..' or backslashes"
        )
    return clean


def _refs(path: PathArg) -> tuple[list[_Ref], Workspace | None]:
    """The pairs of a ``path=`` argument (one tuple or a list of them) and the workspace of
    the ``Datastore`` objects among them (datastores given by name bring none)."""
    is_pair = (
        isinstance(path, tuple)
        and len(path) == 2
        and isinstance(path[0], Datastore | str)
        and isinstance(path[1], str)
    )
    if isinstance(path, str):
        kind = "an http(s) URL" if path.startswith(("http://", "https://")) else "a plain string"
        raise DatasetError(
            f"path {path!r} is {kind}: give (datastore, 'path/on/datastore') or a list of such "
            "pairs; datasets from web URLs are not supported yet, so download the file "
            "and upload it to a datastore first (Datastore.upload_files)"
        )
    items: list[Any] = [path] if is_pair else list(path)
    if not items:
        raise DatasetError("path is empty; give (datastore, 'path') or a list of such pairs")
    refs: list[_Ref] = []
    workspace: Workspace | None = None
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise DatasetError(f"path item {item!r} is not a (datastore, 'path/on/datastore') pair")
        store, p = item
        if isinstance(store, Datastore):
            if workspace is not None and store.workspace is not workspace:
                raise DatasetError("every datastore of one dataset must be of one workspace")
            workspace = store.workspace
            name = store.name
        elif isinstance(store, str) and store:
            name = store
        else:
            raise DatasetError(f"datastore {store!r} is neither a Datastore nor a datastore name")
        refs.append(_Ref(name, _normalise(p)))
    return refs, workspace


def _relative(key: str, ref: _Ref) -> str | None:
    if key == ref.path:
        return PurePosixPath(key).name
    if key.startswith(ref.path + "/"):
        return key[len(ref.path) + 1 :]
    return None


class AbstractDataset:
    """What tabular and file datasets share: definition, registration, consumption."""

    _kind: ClassVar[Literal["tabular", "file"]]

    def __init__(
        self,
        refs: list[_Ref],
        options: dict[str, Any],
        workspace: Workspace | None = None,
        registration: dict[str, Any] | None = None,
    ) -> None:
        self._refs = refs
        self._options = options
        self._workspace = workspace
        self._registration = registration
        self._objects: list[_Object] | None = None

    # ---------------------------------------------------------------- identity

    @property
    def name(self) -> str | None:
        """The registered name; ``None`` until registered."""
        return None if self._registration is None else str(self._registration["name"])

    @property
    def version(self) -> int | None:
        return None if self._registration is None else int(self._registration["version"])

    @property
    def id(self) -> str | None:
        return None if self._registration is None else str(self._registration["id"])

    @property
    def description(self) -> str:
        return "" if self._registration is None else str(self._registration["description"])

    @property
    def identity(self) -> list[dict[str, Any]] | None:
        """Datastore, path, size and ETag of every object at registration."""
        return None if self._registration is None else list(self._registration["identity"])

    @property
    def definition(self) -> dict[str, Any]:
        return {
            "paths": [{"datastore": r.datastore, "path": r.path} for r in self._refs],
            "options": dict(self._options),
        }

    def __repr__(self) -> str:
        kind = type(self).__name__
        if self._registration is None:
            paths = ", ".join(f"({r.datastore!r}, {r.path!r})" for r in self._refs)
            return f"{kind}(unregistered, paths=[{paths}])"
        return f"{kind}(name={self.name!r}, version={self.version})"

    @classmethod
    def _from_view(cls: type[_D], workspace: Workspace, view: dict[str, Any]) -> _D:
        refs = [_Ref(p["datastore"], p["path"]) for p in view["definition"]["paths"]]
        return cls(refs, dict(view["definition"]["options"]), workspace, view)

    # ---------------------------------------------------------------- registration

    def register(
        self: _D,
        workspace: Workspace,
        name: str,
        description: str = "",
        create_new_version: bool = False,
    ) -> _D:
        """Register the definition under ``name``; returns the registered version.

        The API records the content identity now and numbers the version. With
        ``create_new_version=False`` (Azure ML's default) a name that exists is refused
        unless its latest version has the same definition and content, which is returned."""
        view = workspace.client.post(
            "/datasets",
            {
                **self.definition,
                "name": name,
                "kind": self._kind,
                "description": description,
                "create_new_version": create_new_version,
            },
        )
        return type(self)._from_view(workspace, view)

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        """This dataset as a step input called ``name`` (``direct`` mode)."""
        return DatasetConsumptionConfig(name, self)

    # ---------------------------------------------------------------- reading

    def _ws(self) -> Workspace:
        if self._workspace is None:
            raise DatasetError(
                "this dataset names its datastores as strings, so it does not know its "
                "workspace; build it from Datastore objects, or register it first"
            )
        return self._workspace

    def _resolve(self) -> list[_Object]:
        """The objects to read: those recorded at registration, or (unregistered) what the
        paths name now. Cached: a dataset object stands for one content."""
        if self._objects is not None:
            return self._objects
        objects: list[_Object] = []
        if self._registration is not None:
            for entry in self._registration["identity"]:
                for ref in self._refs:
                    rel = (
                        _relative(entry["path"], ref)
                        if ref.datastore == entry["datastore"]
                        else None
                    )
                    if rel is not None:
                        objects.append(
                            _Object(entry["datastore"], entry["path"], rel, int(entry["size"]))
                        )
                        break
        else:
            client = self._ws().client
            for ref in self._refs:
                listed = client.get(f"/datastores/{quote(ref.datastore)}/objects", prefix=ref.path)
                keys = [o["path"] for o in listed] or [ref.path]
                for key in keys:
                    rel = _relative(key, ref)
                    if rel is not None:
                        objects.append(_Object(ref.datastore, key, rel, None))
        self._objects = objects
        return objects

    def _read(self, obj: _Object) -> bytes:
        """One object's bytes; a size differing from the registered one means the content
        changed since registration, which this version must not silently read."""
        from headrace.errors import NotFoundError

        url = f"/datastores/{quote(obj.datastore)}/objects/{quote(obj.key)}"
        try:
            data = self._ws().client.get_bytes(url)
        except NotFoundError as exc:
            raise DatasetError(
                f"no object {obj.key!r} on datastore {obj.datastore!r} ({exc}); "
                + (
                    f"it was deleted after version {self.version} of {self.name!r} was registered"
                    if self._registration is not None
                    else "upload it first, or check the path"
                )
            ) from exc
        if obj.size is not None and len(data) != obj.size:
            raise DatasetError(
                f"object {obj.key!r} on datastore {obj.datastore!r} changed since version "
                f"{self.version} of dataset {self.name!r} was registered ({obj.size} bytes "
                f"then, {len(data)} now); register a new version to read the new content"
            )
        return data


class TabularDataset(AbstractDataset):
    """Delimited files read as one table."""

    _kind = "tabular"

    def to_pandas_dataframe(self) -> Any:
        """Every file parsed with pandas and concatenated, in path order (a ``DataFrame``).

        A file that does not parse raises ``DatasetError`` naming its datastore and path."""
        sources = ((o.datastore, o.key, self._read(o)) for o in self._resolve())
        return read_delimited(sources, self._options, DatasetError)


class FileDataset(AbstractDataset):
    """Files (one object, or every object under a prefix) handled as files."""

    _kind = "file"

    def to_path(self) -> list[str]:
        """The dataset's files as paths below its root (``/sub/a.txt``), as Azure ML shows
        them: a prefix path's own part is removed, a single file keeps its name."""
        return ["/" + o.relative for o in self._resolve()]

    def download(self, target_path: str | Path | None = None, overwrite: bool = False) -> list[str]:
        """Download every file below ``target_path`` (a new temporary directory when
        ``None``), each at its ``to_path`` location; returns the local paths.

        An existing file is an error unless ``overwrite``: a download must not silently mix
        with, or replace, what is already there."""
        dest = Path(target_path) if target_path is not None else Path(tempfile.mkdtemp())
        objects = self._resolve()
        seen: dict[str, _Object] = {}
        for obj in objects:
            if obj.relative in seen:
                other = seen[obj.relative]
                raise DatasetError(
                    f"{obj.key!r} on {obj.datastore!r} and {other.key!r} on "
                    f"{other.datastore!r} would both download to {obj.relative!r}"
                )
            seen[obj.relative] = obj
        root = dest.resolve()
        written = []
        for obj in objects:
            out = dest / obj.relative
            if not out.resolve().is_relative_to(root):
                raise DatasetError(f"object {obj.key!r} would land outside {dest}; refused")
            if out.exists() and not overwrite:
                raise DatasetError(f"{out} exists; pass overwrite=True to replace it")
            data = self._read(obj)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            written.append(str(out))
        return written


class DatasetConsumptionConfig:
    """A dataset as a named step input, and how the step gets it.

    ``direct``: the step receives the dataset itself (``Run.input_datasets[name]``);
    ``mount`` / ``download``: a file dataset's files appear under ``path_on_compute``.
    It only carries the choice; the pipeline code turns ``to_spec()`` into a step input."""

    def __init__(
        self,
        name: str,
        dataset: AbstractDataset,
        mode: Mode = "direct",
        path_on_compute: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not _INPUT_NAME.match(name):
            raise DatasetError(
                f"input name {name!r} must start with a letter or '_' and hold only letters, "
                "digits and '_'"
            )
        if mode not in ("direct", "mount", "download"):
            raise DatasetError(f"mode {mode!r} is not one of direct, mount, download")
        if mode != "direct" and not isinstance(dataset, FileDataset):
            raise DatasetError(
                f"input {name!r}: {mode} is for file datasets; a tabular dataset is consumed "
                "directly (as_named_input(...) and to_pandas_dataframe() in the step)"
            )
        self.name = name
        self.dataset = dataset
        self.mode: Mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files linked into the step's working area (read-only use)."""
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files copied into the step's working area before it starts."""
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-able description of the input: which dataset version, which mode."""
        ds = self.dataset
        return {
            "input_name": self.name,
            "dataset_name": ds.name,
            "dataset_version": ds.version,
            "dataset_id": ds.id,
            "kind": ds._kind,
            "mode": self.mode,
            "path_on_compute": self.path_on_compute,
            "definition": ds.definition,
        }

    def __repr__(self) -> str:
        return f"DatasetConsumptionConfig(name={self.name!r}, mode={self.mode!r}, {self.dataset!r})"


class TabularDatasetFactory:
    """``Dataset.Tabular``."""

    @staticmethod
    def from_delimited_files(
        path: PathArg,
        separator: str = ",",
        header: bool = True,
        encoding: str = "utf-8",
    ) -> TabularDataset:
        """A tabular dataset of delimited files (CSV by default); nothing is read yet.

        ``path`` is ``(datastore, "path/a.csv")`` or a list of such pairs; a path may be a
        prefix, whose every object is a file of the table."""
        if not isinstance(separator, str) or len(separator) != 1:
            raise DatasetError(f"separator must be one character, not {separator!r}")
        refs, workspace = _refs(path)
        options = {"separator": separator, "header": bool(header), "encoding": encoding}
        return TabularDataset(refs, options, workspace)


class FileDatasetFactory:
    """``Dataset.File``."""

    @staticmethod
    def from_files(path: PathArg) -> FileDataset:
        """A file dataset of objects or prefixes (``(datastore, "dir/")``); nothing is read
        yet."""
        refs, workspace = _refs(path)
        return FileDataset(refs, {}, workspace)


class Dataset:
    """Entry point, as ``azureml.core.Dataset``."""

    Tabular = TabularDatasetFactory
    File = FileDatasetFactory

    @staticmethod
    def get_by_name(
        workspace: Workspace, name: str, version: int | str = "latest"
    ) -> TabularDataset | FileDataset:
        """A registered dataset: its latest version, or ``version``."""
        view = workspace.client.get(f"/datasets/{quote(name, safe='')}", version=str(version))
        cls: type[TabularDataset | FileDataset] = (
            TabularDataset if view["kind"] == "tabular" else FileDataset
        )
        return cls._from_view(workspace, view)
