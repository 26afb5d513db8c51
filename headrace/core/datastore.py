"""``Datastore``: a named object store of the workspace, reached through the API.

Registering (``Datastore.register_s3_bucket`` and friends) sends the credentials once, to the
API, which checks that the store answers before recording it; they stay on the server from
then on. What the SDK gets back, and keeps, is the public view, where every credential reads
``"***"``: a ``Datastore`` object can be printed, logged or pickled without leaking a key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.progress import Progress

from contracts.snapshot import safe_relative_path
from headrace.errors import ApiError, NotFoundError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["Datastore"]


def _join(*parts: str | None) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _target(target_path: str | None) -> str:
    """``target_path`` as a key prefix, or ``ValueError`` when it would leave the datastore.

    Why refuse rather than strip: ``"/etc"`` used to become ``"etc"`` and ``"../x"`` was left
    to the server, so the caller never learned that the data went somewhere else than asked.
    A trailing slash is tolerated, as before.
    """
    if not target_path:
        return ""
    if target_path.startswith(("/", "\\")):
        raise ValueError(
            f"target_path {target_path!r} must be a relative path inside the datastore; drop "
            "the leading '/'"
        )
    try:
        return safe_relative_path(target_path.rstrip("/"))
    except ValueError as exc:
        raise ValueError(f"target_path {target_path!r} is not usable: {exc}") from None


class Datastore:
    """A registered datastore (``Datastore(ws, "workspaceblobstore")``; ``Datastore(ws)`` is
    the workspace's default, as in Azure ML)."""

    def __init__(self, workspace: Workspace, name: str | None = None) -> None:
        if name is None:
            name = str(workspace.client.get("/workspace")["default_datastore"])
        try:
            info = workspace.client.get(f"/datastores/{quote(name)}")
        except NotFoundError as exc:
            known = [d["name"] for d in workspace.client.get("/datastores")]
            raise NotFoundError(
                404, f"unknown datastore {name!r}; registered: {', '.join(known) or 'none'}"
            ) from exc
        self._set(workspace, info)

    def _set(self, workspace: Workspace, info: dict[str, Any]) -> None:
        self.workspace = workspace
        self.name: str = info["name"]
        #: ``local``, ``s3``, ``azure_blob`` or ``gcs``.
        self.datastore_type: str = info["kind"]
        self.is_default: bool = bool(info.get("is_default", False))
        #: The config with every credential shown as ``"***"``.
        self.config: dict[str, Any] = dict(info.get("config") or {})
        self.container_name: str | None = self.config.get("container")
        self.account_name: str | None = self.config.get("account_name")
        self.bucket_name: str | None = self.config.get("bucket")
        self.endpoint: str | None = self.config.get("endpoint") or self.config.get("base_url")

    @classmethod
    def _from_info(cls, workspace: Workspace, info: dict[str, Any]) -> Datastore:
        ds = cls.__new__(cls)
        ds._set(workspace, info)
        return ds

    @staticmethod
    def get(workspace: Workspace, datastore_name: str) -> Datastore:
        """The datastore called ``datastore_name`` (``NotFoundError`` naming the known ones)."""
        return Datastore(workspace, datastore_name)

    @staticmethod
    def get_default(workspace: Workspace) -> Datastore:
        """The workspace's default datastore."""
        return workspace.get_default_datastore()

    # ---------------------------------------------------------------- registration

    @staticmethod
    def _register(
        workspace: Workspace, name: str, kind: str, config: dict[str, Any], overwrite: bool
    ) -> Datastore:
        """POST the registration; the server validates the config and probes the store.

        ``None`` values are dropped so the server's defaults apply. The request body holds the
        credentials; the response, and so the returned object, does not."""
        body = {
            "name": name,
            "kind": kind,
            "config": {k: v for k, v in config.items() if v is not None},
            "overwrite": overwrite,
        }
        return Datastore._from_info(workspace, workspace.client.post("/datastores", body))

    @staticmethod
    def register_azure_blob_container(
        workspace: Workspace,
        datastore_name: str,
        container_name: str,
        account_name: str,
        sas_token: str | None = None,
        account_key: str | None = None,
        protocol: str | None = None,
        endpoint: str | None = None,
        overwrite: bool = False,
        *,
        prefix: str = "",
        use_emulator: bool = False,
    ) -> Datastore:
        """Register an Azure Blob container (or one of Azurite).

        Argument order as in Azure ML. ``endpoint`` is either the blob service URL (for
        emulators, with the account: ``http://127.0.0.1:10000/devstoreaccount1``) or, as in
        Azure ML, the storage endpoint suffix (``core.windows.net``), combined with
        ``protocol`` (default ``https``). Give ``account_key`` or ``sas_token``, not both."""
        url = endpoint
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            url = f"{protocol or 'https'}://{account_name}.blob.{endpoint.strip('.')}"
        elif endpoint is None and protocol not in (None, "https"):
            url = f"{protocol}://{account_name}.blob.core.windows.net"
        config: dict[str, Any] = {
            "account_name": account_name,
            "container": container_name,
            "account_key": account_key,
            "sas_token": sas_token,
            "endpoint": url,
            "prefix": prefix or None,
            "use_emulator": use_emulator or None,
        }
        return Datastore._register(workspace, datastore_name, "azure_blob", config, overwrite)

    @staticmethod
    def register_s3_bucket(
        workspace: Workspace,
        datastore_name: str,
        bucket_name: str,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        *,
        session_token: str | None = None,
        path_style: bool | None = None,
        prefix: str = "",
        overwrite: bool = False,
    ) -> Datastore:
        """Register an S3 bucket, on AWS (no ``endpoint``) or on an S3-compatible server
        (SeaweedFS, MinIO, Ceph: ``endpoint="http://host:8333"``, path-style requests).

        Without keys the server's environment credentials are used (an instance role, say)."""
        config: dict[str, Any] = {
            "bucket": bucket_name,
            "endpoint": endpoint,
            "region": region,
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
            "path_style": path_style,
            "prefix": prefix or None,
        }
        return Datastore._register(workspace, datastore_name, "s3", config, overwrite)

    @staticmethod
    def register_gcs(
        workspace: Workspace,
        datastore_name: str,
        bucket_name: str,
        service_account_key: str | dict[str, Any] | None = None,
        service_account_path: str | None = None,
        *,
        base_url: str | None = None,
        skip_signature: bool = False,
        prefix: str = "",
        overwrite: bool = False,
    ) -> Datastore:
        """Register a Google Cloud Storage bucket.

        ``service_account_key`` is the service account's JSON key (text or parsed);
        ``service_account_path`` is the path of that file *on the server*."""
        key = (
            json.dumps(service_account_key)
            if isinstance(service_account_key, dict)
            else service_account_key
        )
        config: dict[str, Any] = {
            "bucket": bucket_name,
            "service_account_key": key,
            "service_account_path": service_account_path,
            "base_url": base_url,
            "skip_signature": skip_signature or None,
            "prefix": prefix or None,
        }
        return Datastore._register(workspace, datastore_name, "gcs", config, overwrite)

    @staticmethod
    def register_local(
        workspace: Workspace,
        datastore_name: str,
        root: str | os.PathLike[str],
        overwrite: bool = False,
    ) -> Datastore:
        """Register a directory as a datastore.

        ``root`` is an absolute path **on the API server's machine** (the stack's services read
        and write it), not on the client's; with the embedded stack both are the same machine.
        The server creates the directory if it is missing."""
        config = {"root": os.fspath(root)}
        return Datastore._register(workspace, datastore_name, "local", config, overwrite)

    def set_as_default(self) -> None:
        """Make this the workspace's default datastore (admin scope).

        Snapshots, logs and outputs without a datastore of their own go here from then on;
        what is already stored on the previous default stays there."""
        info = self.workspace.client.post(f"/datastores/{quote(self.name)}/default", {})
        self._set(self.workspace, info)

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
        prefix = _target(target_path)
        paths = [Path(f) for f in files]
        keys = []
        with Progress(disable=not show_progress, transient=True) as progress:
            task = progress.add_task(
                f"uploading to {self.name}", total=sum(p.stat().st_size for p in paths)
            )
            for path in paths:
                rel = path.relative_to(relative_root).as_posix() if relative_root else path.name
                key = _join(prefix, rel)
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
        _target(target_path)  # before walking the tree: a bad target fails at once
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
            if not out.resolve().is_relative_to(dest.resolve()):
                # Keys of a shared bucket are not ours to trust: never write outside dest.
                raise ApiError(
                    400, f"refusing object {obj['path']!r}: it would land outside {dest}"
                )
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
        # The public config only: credentials are never in it.
        return f"Datastore(name={self.name!r}, type={self.datastore_type!r})"
