"""``azureml.core.model``: the model registry.

``Model.register`` uploads the files under ``model_path`` (a file or a folder; every file,
no ignore rules: a model is what it holds) as content-addressed blobs, only those the server
lacks, and registers them as the next version of the name. ``Model(ws, name=, version=)``
and ``Model.list`` read versions back; ``download`` writes the files as they were registered.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from contracts.snapshot import ManifestEntry, SnapshotManifest, digest_file
from headrace.errors import HeadraceError, NotSupportedError
from headrace.snapshot import SourceSnapshot, upload_snapshot

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["Model"]

_DEPLOYMENT = (
    "deploy models with your own serving stack: Model.download(target_dir=...) gives the "
    "registered files"
)


def _collect(model_path: Path) -> tuple[SourceSnapshot, str]:
    """The files under ``model_path`` as a manifest whose paths start with its base name."""
    if not model_path.exists():
        raise HeadraceError(
            f"model_path {model_path} does not exist; give the file or folder to register"
        )
    base = model_path.name
    files = [model_path] if model_path.is_file() else sorted(model_path.rglob("*"))
    entries, sources = [], {}
    for f in files:
        if not f.is_file():
            continue
        digest, size = digest_file(f)
        rel = base if f == model_path else f"{base}/{f.relative_to(model_path).as_posix()}"
        entries.append(ManifestEntry(path=rel, digest=digest, size=size))
        sources[digest] = f
    if not entries:
        raise HeadraceError(f"model_path {model_path} holds no files; nothing to register")
    snap = SourceSnapshot(
        root=model_path.parent,
        manifest=SnapshotManifest(files=entries),
        excluded=(),
        sources=sources,
    )
    return snap, base


def _labels(given: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (given or {}).items()}


def _query(given: builtins.list[Any] | dict[str, Any] | None) -> builtins.list[str] | None:
    """v1's ``tags=[["key", "value"], "key"]`` (or a dict) as ``key=value`` query values."""
    if not given:
        return None
    if isinstance(given, dict):
        return [f"{k}={v}" for k, v in given.items()]
    out = []
    for item in given:
        if isinstance(item, str):
            out.append(item)
        else:
            key, value = item
            out.append(f"{key}={value}")
    return out


def _dataset_refs(datasets: builtins.list[Any] | None) -> builtins.list[dict[str, Any]]:
    """v1's ``datasets=[("training data", dataset), ...]`` as registered name and version."""
    refs = []
    for item in datasets or []:
        ds = item[1] if isinstance(item, tuple | builtins.list) else item
        if getattr(ds, "name", None) is None or getattr(ds, "version", None) is None:
            raise HeadraceError(
                f"datasets: {ds!r} is not a registered dataset; register it first "
                "(dataset.register(ws, name)) so the model's lineage can name its version"
            )
        refs.append({"name": ds.name, "version": int(ds.version)})
    return refs


class Model:
    """A registered model version (``Model(ws, name=..., version=...)``; no version: latest)."""

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: builtins.list[Any] | None = None,
        properties: builtins.list[Any] | None = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        **kwargs: Any,
    ) -> None:
        self.workspace = workspace
        info = kwargs.pop("_info", None)
        if kwargs:
            raise TypeError(f"Model() got unexpected arguments {', '.join(kwargs)}")
        if info is None:
            if id is not None:
                name, _, number = id.partition(":")
                version = int(number) if number else version
            if name is None:
                raise HeadraceError("Model(ws, name=...) or Model(ws, id='name:version')")
            if tags or properties or run_id or model_framework:
                found = Model.list(
                    workspace,
                    name=name,
                    tags=tags,
                    properties=properties,
                    run_id=run_id,
                    latest=version is None,
                )
                found = [m for m in found if version is None or m.version == version]
                if not found:
                    raise HeadraceError(f"no model {name!r} matches the given filters")
                info = found[0]._info
            else:
                number = str(version) if version is not None else "latest"
                info = workspace.client.get(f"/models/{quote(name)}/versions/{number}")
        self._info: dict[str, Any] = info

    # -- v1's attributes -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self._info["id"])

    @property
    def name(self) -> str:
        return str(self._info["name"])

    @property
    def version(self) -> int:
        return int(self._info["version"])

    @property
    def description(self) -> str:
        return str(self._info["description"])

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._info["tags"])

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._info["properties"])

    @property
    def created_time(self) -> str:
        return str(self._info["created_time"])

    @property
    def run_id(self) -> str | None:
        return self._info["run_id"]  # type: ignore[no-any-return]

    @property
    def model_framework(self) -> str | None:
        return self._info["model_framework"]  # type: ignore[no-any-return]

    @property
    def model_framework_version(self) -> str | None:
        return self._info["model_framework_version"]  # type: ignore[no-any-return]

    @property
    def datasets(self) -> dict[str, builtins.list[dict[str, Any]]]:
        """The datasets the registration named, under v1's scenario key ``"training"``."""
        return {"training": list(self._info["datasets"])} if self._info["datasets"] else {}

    @property
    def url(self) -> str:
        base = self.workspace.api_url.rstrip("/")
        return f"{base}/api/v1/models/{quote(self.name)}/versions/{self.version}"

    # -- registering and finding ---------------------------------------------------------

    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        datasets: builtins.list[Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: builtins.list[str] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> Model:
        """Upload ``model_path``'s files (only those the server lacks) and register them as
        the next version of ``model_name``."""
        for given, what in (
            (child_paths, "child_paths"),
            (sample_input_dataset, "sample_input_dataset"),
            (sample_output_dataset, "sample_output_dataset"),
            (resource_configuration, "resource_configuration"),
        ):
            if given is not None:
                raise NotSupportedError(
                    f"Model.register({what}=...) (deployment metadata)",
                    "register the whole folder as model_path; " + _DEPLOYMENT,
                )
        snap, base = _collect(Path(model_path).expanduser().resolve())
        upload_snapshot(workspace.client, snap, show_progress=False)
        info = workspace.client.post(
            "/models",
            {
                "name": model_name,
                "manifest": snap.digest,
                "path": base,
                "description": description or "",
                "tags": _labels(tags),
                "properties": _labels(properties),
                "datasets": _dataset_refs(datasets),
                "model_framework": model_framework,
                "model_framework_version": model_framework_version,
            },
        )
        return Model(workspace, _info=info)

    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: builtins.list[Any] | dict[str, Any] | None = None,
        properties: builtins.list[Any] | dict[str, Any] | None = None,
        run_id: str | None = None,
        latest: bool = False,
        dataset_id: str | None = None,
        expand: bool = True,
        page_count: int = 255,
        model_framework: str | None = None,
    ) -> builtins.list[Model]:
        """Versions newest first: ``tags=[["key", "value"], "key"]`` as in v1 (a bare key
        matches any value); ``latest``: only each name's newest version."""
        if dataset_id is not None:
            raise NotSupportedError(
                "Model.list(dataset_id=...)",
                "list the models and read each one's .datasets",
            )
        found = workspace.client.get(
            "/models",
            name=name,
            tag=_query(tags),
            property=_query(properties),
            run_id=run_id,
            latest=str(latest).lower(),
        )
        models = [Model(workspace, _info=m) for m in found]
        if model_framework is not None:
            models = [m for m in models if m.model_framework == model_framework]
        return models[:page_count]

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        raise NotSupportedError(
            "Model.get_model_path (the path of a model inside an Azure ML deployment)",
            "download the model where it is used: Model(ws, name).download(target_dir=...)",
        )

    # -- changing ------------------------------------------------------------------------

    def _patch(self, body: dict[str, Any]) -> None:
        self._info = self.workspace.client.patch(
            f"/models/{quote(self.name)}/versions/{self.version}", body
        )

    def add_tags(self, tags: dict[str, Any]) -> None:
        self._patch({"add_tags": _labels(tags)})

    def remove_tags(self, tags: builtins.list[str]) -> None:
        self._patch({"remove_tags": [str(t) for t in tags]})

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; one already set cannot change (as in v1)."""
        self._patch({"add_properties": _labels(properties)})

    def update_tags_properties(
        self,
        add_tags: dict[str, Any] | None = None,
        remove_tags: builtins.list[str] | None = None,
        add_properties: dict[str, Any] | None = None,
    ) -> None:
        self._patch(
            {
                "add_tags": _labels(add_tags),
                "remove_tags": [str(t) for t in remove_tags or []],
                "add_properties": _labels(add_properties),
            }
        )

    def update(
        self,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> None:
        """Replace the tags (when given) and the description (when given)."""
        if sample_input_dataset or sample_output_dataset or resource_configuration:
            raise NotSupportedError("Model.update of deployment metadata", _DEPLOYMENT)
        body: dict[str, Any] = {}
        if tags is not None:
            body["remove_tags"] = [t for t in self.tags if t not in tags]
            body["add_tags"] = _labels(tags)
        if description is not None:
            body["description"] = description
        self._patch(body)

    def delete(self) -> None:
        self.workspace.client.delete(f"/models/{quote(self.name)}/versions/{self.version}")

    # -- files ---------------------------------------------------------------------------

    def download(
        self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None
    ) -> str:
        """Write the registered files under ``target_dir``; return the path of what was
        registered (the file, or the folder). An existing file is an error unless
        ``exist_ok``."""
        overwrite = exist_ok if exists_ok is None else exists_ok
        root = Path(target_dir).expanduser().resolve()
        view = self.workspace.client.get(f"/models/{quote(self.name)}/versions/{self.version}")
        for f in view["files"]:
            dest = (root / f["path"]).resolve()
            if not dest.is_relative_to(root):
                raise HeadraceError(f"model file {f['path']!r} would be written outside {root}")
            if dest.exists() and not overwrite:
                raise HeadraceError(
                    f"{dest} exists; pass exist_ok=True to overwrite it, or another target_dir"
                )
            data = self.workspace.client.get_bytes(
                f"/models/{quote(self.name)}/versions/{self.version}/files/{quote(f['path'])}"
            )
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        return str(root / str(view["path"]))

    def serialize(self) -> dict[str, Any]:
        return dict(self._info)

    @staticmethod
    def deploy(*args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError("Model.deploy (Azure ML web services)", _DEPLOYMENT)

    @staticmethod
    def package(*args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError("Model.package (Azure ML model images)", _DEPLOYMENT)

    def __repr__(self) -> str:
        return (
            f"Model(workspace={self.workspace.name!r}, name={self.name}, id={self.id}, "
            f"version={self.version}, tags={self.tags}, properties={self.properties})"
        )
