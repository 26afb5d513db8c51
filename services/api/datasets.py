"""HTTP routes of datasets: named, immutable, numbered versions of data on datastores.

A version holds a definition (the ``(datastore, path)`` pairs and, for tabular data, how to
parse the delimited files) and the content identity found at registration (datastore, path,
size and ETag of every object). Why record the identity: a version must mean one content; if
an object changes afterwards, registering again shows a different identity and becomes the
next version, and lineage can tell which content a run read.

Registration reads the stores first (object-store I/O holds no database lock), then numbers the
version under a per-name advisory lock, so concurrent registrations of one name get distinct
consecutive versions.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.snapshot import safe_relative_path
from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Conflict, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import context_of
from services.runtime.storage import (
    InvalidKey,
    open_named,
)

__all__ = ["MAX_OBJECTS", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)

#: Objects one version may hold: its identity is stored as one JSON document.
MAX_OBJECTS = 100_000


class DatasetPath(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datastore: str = Field(min_length=1, max_length=255)
    path: str = Field(min_length=1, max_length=4096)


class TabularOptions(BaseModel):
    """How delimited files are parsed (``from_delimited_files``)."""

    model_config = ConfigDict(extra="forbid")

    separator: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    encoding: str = Field(default="utf-8", min_length=1, max_length=40)


class DatasetCreate(BaseModel):
    """``dataset.register(ws, name, ...)``."""

    model_config = ConfigDict(extra="forbid")

    #: Pattern checked in the route, for a message naming the field.
    name: str = Field(max_length=255)
    kind: Literal["tabular", "file"]
    paths: list[DatasetPath] = Field(min_length=1, max_length=1000)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = Field(default="", max_length=10_000)
    create_new_version: bool = True


def _options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options normalised (defaults filled in), or a 422 naming the bad field."""
    if kind == "file":
        if options:
            raise ApiError(
                f"field 'options': a file dataset takes no options (got {', '.join(options)}); "
                "parsing options belong to tabular datasets"
            )
        return {}
    try:
        return TabularOptions.model_validate(options).model_dump()
    except ValidationError as exc:
        problems = [
            f"field 'options.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        raise ApiError("; ".join(problems)) from None


async def _identity(pool: Any, paths: list[DatasetPath]) -> list[dict[str, Any]]:
    """Datastore, path, size and ETag of every object each path names (an object, or every
    object under a prefix); 404 naming the datastore and path when there is none."""
    out: list[dict[str, Any]] = []
    for ref in paths:
        ds = await open_named(pool, ref.datastore)  # unknown: 404 (see service.py)
        try:
            objects = await ds.identity(ref.path)
        except InvalidKey as exc:
            raise ApiError(
                f"path {ref.path!r} escapes datastore {ref.datastore!r}: {exc}"
            ) from None
        if not objects:
            raise NotFound(
                f"no object or prefix {ref.path!r} on datastore {ref.datastore!r}; upload the "
                "data first, or check the path"
            )
        out.extend(
            {"datastore": ref.datastore, "path": p, "size": size, "etag": etag}
            for p, size, etag in objects
        )
        if len(out) > MAX_OBJECTS:
            raise ApiError(
                f"the dataset's paths hold more than {MAX_OBJECTS} objects; split it into "
                "several datasets"
            )
    return out


@router.post("/datasets", status_code=201)
async def register_dataset(body: DatasetCreate, request: Request, response: Response) -> Any:
    """Register a new version (201), or return the latest one unchanged (200) when
    ``create_new_version`` is false and definition and identity are the same."""
    ctx = context_of(request)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", body.name):
        raise ApiError(
            f"field 'name': {body.name!r} is not a dataset name; use letters, digits, '.', "
            "'_' and '-', starting with a letter or digit"
        )
    for ref in body.paths:
        try:
            # One spelling per path ("dir/" and "dir" are one definition).
            ref.path = safe_relative_path(ref.path.strip().rstrip("/"))
        except ValueError as exc:
            raise ApiError(
                f"path {ref.path!r} escapes datastore {ref.datastore!r}: {exc}"
            ) from None
    definition = {
        "paths": [p.model_dump() for p in body.paths],
        "options": _options(body.kind, body.options),
    }
    identity = await _identity(ctx.pool, body.paths)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.lock_versions(conn, "dataset", body.name)
        latest = await store.dataset_version(conn, body.name, None)
        if latest is not None and not body.create_new_version:
            same = (
                latest["kind"] == body.kind
                and latest["definition"] == definition
                and latest["identity"] == identity
            )
            if not same:
                raise Conflict(
                    f"dataset {body.name!r} exists (latest version {latest['version']}) with "
                    "another definition or content; pass create_new_version=True to add "
                    "a version, or pick another name"
                )
            response.status_code = 200
            return latest
        return await store.insert_dataset_version(
            conn, body.name, body.kind, body.description, definition, identity
        )


@router.get("/datasets")
async def list_datasets(request: Request) -> list[dict[str, Any]]:
    """The latest version of every dataset."""
    return await store.latest_datasets(context_of(request).pool)


async def _latest_or_404(pool: Any, name: str) -> int:
    latest = await store.latest_dataset_version(pool, name)
    if latest is None:
        raise NotFound(f"no dataset {name!r}; list the registered ones with GET /api/v1/datasets")
    return latest


@router.get("/datasets/{name}")
async def get_dataset(name: str, request: Request, version: str = "latest") -> dict[str, Any]:
    """One version (``?version=N``, default ``latest``): definition, identity, version."""
    pool = context_of(request).pool
    if version != "latest" and not (version.isdigit() and version.isascii()):
        raise ApiError(f"version must be a number or 'latest', not {version!r}")
    number = None if version == "latest" else int(version)
    too_big = number is not None and number > 2**31 - 1  # beyond PostgreSQL's integer
    found = None if too_big else await store.dataset_version(pool, name, number)
    if found is None:
        latest = await _latest_or_404(pool, name)
        raise NotFound(f"dataset {name!r} has no version {version}; its versions are 1 to {latest}")
    return found


@router.get("/datasets/{name}/versions")
async def list_versions(name: str, request: Request) -> list[dict[str, Any]]:
    """Every version, oldest first."""
    pool = context_of(request).pool
    await _latest_or_404(pool, name)
    return await store.dataset_versions(pool, name)


@router.get("/datasets/{name}/lineage")
async def get_lineage(name: str, request: Request) -> list[dict[str, Any]]:
    """The run steps that consumed a version of the dataset, oldest first."""
    pool = context_of(request).pool
    await _latest_or_404(pool, name)
    return await store.dataset_lineage(pool, name)
