"""HTTP routes of the model registry (v1's ``Model``): named, numbered, immutable versions
of a model's files.

The SDK uploads the files as content-addressed blobs with a manifest (the snapshot protocol,
so a re-registered unchanged model uploads nothing), then registers the manifest here. A
version's number comes from a per-name counter that never goes back, so a deleted version's
number is not given again. Only tags, properties and the description change after
registration (``add_tags``, ``remove_tags``, ``add_properties``, ``update``); the files never do.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field

from contracts.snapshot import blob_key
from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import context_of
from services.runtime.snapshots import SnapshotError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)

Labels = dict[str, str]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    version: int = Field(ge=1)


class ModelCreate(BaseModel):
    """``Model.register``: the uploaded files' manifest and what describes them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=255)
    manifest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    path: str = Field(min_length=1, max_length=1024)
    description: str = Field(default="", max_length=10_000)
    tags: Labels = Field(default_factory=dict, max_length=100)
    properties: Labels = Field(default_factory=dict, max_length=100)
    datasets: list[DatasetRef] = Field(default_factory=list, max_length=100)
    model_framework: str | None = Field(default=None, max_length=100)
    model_framework_version: str | None = Field(default=None, max_length=100)
    run_id: str | None = Field(default=None, max_length=255)
    step: str | None = Field(default=None, max_length=255)


class ModelUpdate(BaseModel):
    """The fields that may change: tags (added or removed), properties (added), description."""

    model_config = ConfigDict(extra="forbid")

    add_tags: Labels = Field(default_factory=dict, max_length=100)
    remove_tags: list[str] = Field(default_factory=list, max_length=100)
    add_properties: Labels = Field(default_factory=dict, max_length=100)
    description: str | None = Field(default=None, max_length=10_000)


def _labels(values: list[str], what: str) -> Labels:
    """``key=value`` query values as a dict (``key`` alone: any value, as ``key=`` in v1)."""
    out: Labels = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not key:
            raise ApiError(f"{what} {v!r}: give {what}=key=value")
        out[key] = value if sep else "*"
    return out


async def _version_or_404(conn: Any, name: str, version: int | None) -> dict[str, Any]:
    found = await store.model_version(conn, name, version)
    if found is None:
        raise NotFound(
            f"no model {name!r}"
            + (f" version {version}" if version is not None else "")
            + "; list them with GET /api/v1/models"
        )
    return found


@router.post("/models", status_code=201)
async def register_model(body: ModelCreate, request: Request) -> dict[str, Any]:
    """Register the next version of ``name`` for the uploaded manifest."""
    ctx = context_of(request)
    if not _NAME.fullmatch(body.name):
        raise ApiError(
            f"field 'name': {body.name!r} is not a model name; use letters, digits, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    try:
        manifest = await ctx.manifest(body.manifest)
    except SnapshotError as exc:
        raise Invalid([f"model {body.name!r}: {exc}; upload the files first"]) from None
    if not manifest.files:
        raise Invalid(
            [f"model {body.name!r}: no files; model_path must name a file or a folder with files"]
        )
    problems = [
        f"dataset {d.name!r} version {d.version} is not registered"
        for d in body.datasets
        if await store.dataset_version(ctx.pool, d.name, d.version) is None
    ]
    if problems:
        raise Invalid(problems)
    async with ctx.pool.acquire() as conn, conn.transaction():
        return await store.insert_model_version(conn, body.model_dump(mode="json"))


@router.get("/models")
async def list_models(
    request: Request,
    name: str | None = None,
    tag: list[str] = Query(default_factory=list),
    property: list[str] = Query(default_factory=list),
    run_id: str | None = None,
    latest: bool = False,
) -> list[dict[str, Any]]:
    """Versions newest first, filtered as ``Model.list`` filters (each tag and property
    given; ``latest``: only the newest version of each name)."""
    return await store.list_models(
        context_of(request).pool,
        name=name,
        tags=_labels(tag, "tag"),
        properties=_labels(property, "property"),
        run_id=run_id,
        latest=latest,
    )


def _number(version: str) -> int | None:
    if version == "latest":
        return None
    if not (version.isascii() and version.isdigit()) or int(version) > 2**31 - 1:
        raise ApiError(f"version must be a number or 'latest', not {version!r}")
    return int(version)


@router.get("/models/{name}/versions/{version}")
async def get_model(name: str, version: str, request: Request) -> dict[str, Any]:
    """One version (``latest``: the newest) with its files (path and size)."""
    ctx = context_of(request)
    found = await _version_or_404(ctx.pool, name, _number(version))
    manifest = await ctx.manifest(found["manifest"])
    return {**found, "files": [{"path": f.path, "size": f.size} for f in manifest.files]}


@router.patch("/models/{name}/versions/{version}")
async def update_model(
    name: str, version: str, body: ModelUpdate, request: Request
) -> dict[str, Any]:
    """``add_tags`` / ``remove_tags`` / ``add_properties`` / ``update(description=)``;
    a property once set keeps its value, as in v1."""
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn, conn.transaction():
        found = await _version_or_404(conn, name, _number(version))
        clash = sorted(
            k for k, v in body.add_properties.items() if found["properties"].get(k, v) != v
        )
        if clash:
            raise ApiError(
                f"properties {', '.join(clash)} are set already and cannot change; use tags "
                "for values that change"
            )
        tags = {
            k: v for k, v in {**found["tags"], **body.add_tags}.items() if k not in body.remove_tags
        }
        return await store.update_model_version(
            conn,
            name,
            found["version"],
            tags=tags,
            properties={**found["properties"], **body.add_properties},
            description=body.description if body.description is not None else found["description"],
        )


@router.delete("/models/{name}/versions/{version}")
async def delete_model(name: str, version: str, request: Request) -> dict[str, Any]:
    """Remove the version from the registry (its number is never given again)."""
    pool = context_of(request).pool
    found = await _version_or_404(pool, name, _number(version))
    await store.delete_model_version(pool, name, found["version"])
    return {"id": found["id"], "deleted": True}


@router.get("/models/{name}/versions/{version}/files/{path:path}")
async def model_file(name: str, version: str, path: str, request: Request) -> Response:
    """One file of the version, by its path in the manifest."""
    ctx = context_of(request)
    found = await _version_or_404(ctx.pool, name, _number(version))
    manifest = await ctx.manifest(found["manifest"])
    entry = next((f for f in manifest.files if f.path == path), None)
    if entry is None:
        raise NotFound(f"model {found['id']} has no file {path!r}; its files are listed in 'files'")
    data = await (await ctx.default_store()).get(blob_key(entry.digest))
    return Response(content=data, media_type="application/octet-stream")
