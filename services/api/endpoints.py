"""HTTP routes of versioned pipeline endpoints: one stable URL, numbered versions.

An endpoint keeps versions "0", "1", ... each naming a published pipeline, and a default
version. ``POST /endpoints/{endpoint}/runs`` runs the default, or the ``PipelineVersion`` the
body names; the URL never changes when versions are added or the default moves. ``{endpoint}``
is the endpoint's id or its name.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from services.api import store
from services.api.auth import authorize
from services.api.errors import Conflict, Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import PublishedRunRequest, context_of, start_resolved
from services.runtime import catalog

__all__ = ["router"]

V1_ENDPOINT_SUBMIT = store.V1_ENDPOINT_SUBMIT

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)


#: an endpoint's name: it appears in URLs, so a conservative character set
EndpointName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: EndpointName
    description: str = Field(default="", max_length=10_000)
    pipeline_id: str = Field(min_length=1, max_length=255)


class VersionAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline_id: str = Field(min_length=1, max_length=255)
    set_default: bool = False


class EndpointRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: EndpointName


class DefaultVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=100)


class EndpointRunRequest(PublishedRunRequest):
    """The seed's body, plus the version to run (the default when absent)."""

    version: str | None = Field(default=None, alias="PipelineVersion", max_length=100)


async def _view(conn: Any, ref: str) -> dict[str, Any]:
    view = await store.endpoint_view(conn, ref)
    if view is None:
        raise NotFound(f"no pipeline endpoint {ref!r}; list them with GET /api/v1/endpoints")
    return view


async def _published_exists(conn: Any, pipeline_id: str) -> None:
    if await store.published(conn, pipeline_id) is None:
        raise NotFound(
            f"no published pipeline {pipeline_id!r} to put behind the endpoint; publish it "
            "first (POST /api/v1/pipelines)"
        )


@router.post("/endpoints", status_code=201)
async def create_endpoint(body: EndpointCreate, request: Request) -> dict[str, Any]:
    """``PipelineEndpoint.publish``: a new endpoint whose version "0" is ``pipeline_id``."""
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        await _published_exists(conn, body.pipeline_id)
        if await store.endpoint_view(conn, body.name) is not None:
            raise Conflict(
                f"pipeline endpoint {body.name!r} exists; add a version to it with "
                f"POST /api/v1/endpoints/{body.name}/versions"
            )
        endpoint_id = str(uuid.uuid4())
        await store.create_endpoint(conn, endpoint_id, body.name, body.description)
        await store.add_endpoint_version(conn, endpoint_id, body.pipeline_id, set_default=True)
        return await _view(conn, endpoint_id)


@router.get("/endpoints")
async def list_endpoints(request: Request) -> list[dict[str, Any]]:
    return await store.list_endpoints(context_of(request).pool)


@router.get("/endpoints/{endpoint}")
async def get_endpoint(endpoint: str, request: Request) -> dict[str, Any]:
    return await _view(context_of(request).pool, endpoint)


@router.post("/endpoints/{endpoint}/versions", status_code=201)
async def add_version(endpoint: str, body: VersionAdd, request: Request) -> dict[str, Any]:
    """``add`` / ``add_default``: the next version number behind the same URL."""
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        view = await _view(conn, endpoint)
        await _published_exists(conn, body.pipeline_id)
        version = await store.add_endpoint_version(
            conn, view["id"], body.pipeline_id, set_default=body.set_default
        )
        return {**await _view(conn, view["id"]), "added_version": version}


@router.put("/endpoints/{endpoint}/default")
async def set_default(endpoint: str, body: DefaultVersion, request: Request) -> dict[str, Any]:
    """``set_default_version``: later runs without a version use this one."""
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        view = await _view(conn, endpoint)
        if body.version not in {v["version"] for v in view["versions"]}:
            raise NotFound(
                f"pipeline endpoint {view['name']!r} has no version {body.version!r}; its "
                "versions are " + ", ".join(repr(v["version"]) for v in view["versions"])
            )
        await store.set_endpoint_default(conn, view["id"], body.version)
        return await _view(conn, view["id"])


@router.put("/endpoints/{endpoint}/name")
async def rename_endpoint(endpoint: str, body: EndpointRename, request: Request) -> dict[str, Any]:
    """``set_name``: the endpoint keeps its id, versions and id-based URL; name-based URLs
    follow the new name (the old name is free for another endpoint)."""
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        view = await _view(conn, endpoint)
        taken = await store.endpoint_view(conn, body.name)
        if taken is not None and taken["id"] != view["id"]:
            raise Conflict(
                f"another pipeline endpoint is named {body.name!r}; choose another name or "
                "rename that one first"
            )
        await store.rename_endpoint(conn, view["id"], body.name)
        return await _view(conn, view["id"])


async def _set_status(request: Request, endpoint: str, status: str) -> dict[str, Any]:
    pool = context_of(request).pool
    view = await _view(pool, endpoint)
    await store.set_endpoint_status(pool, view["id"], status)
    return await _view(pool, view["id"])


@router.post("/endpoints/{endpoint}/disable")
async def disable_endpoint(endpoint: str, request: Request) -> dict[str, Any]:
    return await _set_status(request, endpoint, "Disabled")


@router.post("/endpoints/{endpoint}/enable")
async def enable_endpoint(endpoint: str, request: Request) -> dict[str, Any]:
    return await _set_status(request, endpoint, "Active")


@router.post("/endpoints/{endpoint}/runs", status_code=201)
async def run_endpoint(endpoint: str, body: EndpointRunRequest, request: Request) -> dict[str, Any]:
    """Run the endpoint's default version, or ``PipelineVersion``."""
    return await _run(request, endpoint, body, None)


async def _run(
    request: Request, endpoint: str, body: EndpointRunRequest, url_version: str | None
) -> dict[str, Any]:
    """Run a version: the URL's, the body's ``PipelineVersion``, else the default. A URL and
    a body naming two different versions is refused: either choice would surprise someone."""
    if url_version is not None and body.version not in (None, url_version):
        raise Invalid(
            [
                f"the URL names version {url_version!r} and the body's PipelineVersion "
                f"{body.version!r}; name it in one place"
            ]
        )
    ctx = context_of(request)
    found = await catalog.resolve_endpoint(ctx.pool, endpoint, url_version or body.version)
    return await start_resolved(ctx, found, body)


# The v1 service's URLs for running an endpoint. v1 code builds them by editing the
# ``endpoint`` URL as text (the versioned-endpoint notebook does
# ``endpoint.split("Id", 1)[0] + "Name?name=" + name`` and ``endpoint + "/" + version``),
# so ``endpoint`` has the v1 shape and these routes take every form it can be edited into.


@router.post(f"{V1_ENDPOINT_SUBMIT}/Id/{{endpoint_id}}", status_code=201)
async def run_endpoint_by_id(
    endpoint_id: str, body: EndpointRunRequest, request: Request
) -> dict[str, Any]:
    """v1's ``.../PipelineEndpointSubmit/Id/{id}``: the default version or ``PipelineVersion``."""
    return await _run(request, endpoint_id, body, None)


@router.post(f"{V1_ENDPOINT_SUBMIT}/Id/{{endpoint_id}}/{{version}}", status_code=201)
async def run_endpoint_version_by_id(
    endpoint_id: str, version: str, body: EndpointRunRequest, request: Request
) -> dict[str, Any]:
    """v1's ``.../PipelineEndpointSubmit/Id/{id}/{version}``."""
    return await _run(request, endpoint_id, body, version)


@router.post(f"{V1_ENDPOINT_SUBMIT}/Name", status_code=201)
async def run_endpoint_by_name(
    body: EndpointRunRequest,
    request: Request,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    pipeline_version: Annotated[
        str | None, Query(alias="pipelineVersion", min_length=1, max_length=100)
    ] = None,
) -> dict[str, Any]:
    """v1's ``.../PipelineEndpointSubmit/Name?name=...[&pipelineVersion=...]``."""
    return await _run(request, name, body, pipeline_version)
