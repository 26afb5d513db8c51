"""HTTP routes of datastores: register, list, show, choose the default.

Credentials go in (``POST /datastores``) and never come out: every response is built by
``datastore_view`` from ``public_config``, which replaces each credential with ``"***"``.
Storage errors are built by ``services.runtime.storage`` from names, keys and redacted causes,
so they may be returned as they are.

A registration is checked before it is recorded: the config field by field
(``validate_config``), then, by listing a prefix that does not exist, that the store is
reachable and accepts the credentials. A typo found here costs one request; found when the
first step reads its input, it costs a failed run.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Conflict, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import ApiContext, context_of
from services.runtime.storage import (
    DatastoreError,
    DatastoreRecord,
    InvalidDatastore,
    UnknownDatastore,
    check_local_root,
    default_datastore,
    list_datastores,
    load_datastore,
    open_datastore,
    public_config,
    validate_config,
)

__all__ = ["InvalidConfig", "datastore_view", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class InvalidConfig(ApiError):
    """The datastore's config is not usable; the message names the field to fix."""

    status = 422


class DatastoreCreate(BaseModel):
    """``Datastore.register_*``: a name, a kind and its config (credentials included)."""

    model_config = ConfigDict(extra="forbid")

    #: Its pattern is checked in the route, so that the answer is a message naming the
    #: field rather than a validation-problem list.
    name: str = Field(max_length=255)
    #: Checked by ``validate_config`` (not a Literal here), whose message lists the kinds.
    kind: str = Field(min_length=1, max_length=50)
    config: dict[str, Any]
    set_default: bool = False
    #: Replace the config of an existing datastore of that name (``overwrite=True`` in the
    #: SDK, as in Azure ML). The default datastore cannot be replaced this way.
    overwrite: bool = False


def datastore_view(record: DatastoreRecord) -> dict[str, Any]:
    """What a client may see of a datastore: never a credential."""
    return {
        "name": record.name,
        "kind": record.kind,
        "is_default": record.is_default,
        "config": public_config(record),
    }


async def _check_reachable(record: DatastoreRecord) -> None:
    """Open the store and list a prefix that does not exist: proves the endpoint answers,
    the bucket/container exists and the credentials may list, at the cost of one request.

    HEAD of a missing key would not do: a missing bucket answers 404 there too."""
    try:
        ds = open_datastore(record)
    except InvalidDatastore as exc:
        raise InvalidConfig(str(exc)) from None
    except OSError as exc:  # the local kind creates its root
        raise ApiError(
            f"datastore {record.name!r}: cannot create its root directory on the server "
            f"({type(exc).__name__}: {exc.strerror or exc}); check the path and permissions"
        ) from None
    probe = f"headrace-registration-check-{uuid.uuid4().hex}"
    try:
        await ds.listing(probe)
    except DatastoreError as exc:
        raise ApiError(f"datastore {record.name!r} was not registered: {exc}") from None


async def _check_local_root(ctx: ApiContext, root: str) -> None:
    """A local root only under the allowed roots, and away from the state directory and the
    default datastore (see ``check_local_root``)."""
    default = await default_datastore(ctx.pool)
    reserved = [Path(default.config["root"])] if default.kind == "local" else []
    check_local_root(
        root,
        allowed=ctx.settings.allowed_datastore_roots,
        state_dir=ctx.settings.home,
        reserved=reserved,
    )


@router.post("/datastores", status_code=201)
async def register_datastore(body: DatastoreCreate, request: Request) -> dict[str, Any]:
    """Register a datastore after checking its config and that its store answers."""
    ctx = context_of(request)
    if not re.fullmatch(NAME_PATTERN, body.name):
        raise InvalidConfig(
            f"field 'name': {body.name!r} is not a datastore name; use letters, digits, '.', "
            "'_' and '-', starting with a letter or digit"
        )
    try:
        config = validate_config(body.kind, body.config)
        if body.kind == "local":
            await _check_local_root(ctx, config["root"])
    except InvalidDatastore as exc:
        raise InvalidConfig(f"datastore {body.name!r}: {exc}") from None
    try:
        taken: DatastoreRecord | None = await load_datastore(ctx.pool, body.name)
    except UnknownDatastore:
        taken = None
    if taken is not None and not body.overwrite:
        raise Conflict(
            f"datastore {body.name!r} exists; pick another name, or pass overwrite=True to "
            "replace its config (list the names taken with GET /api/v1/datastores)"
        )
    if taken is not None and taken.is_default:
        raise Conflict(
            f"datastore {body.name!r} is the workspace's default and cannot be replaced; "
            "register the new store under another name"
        )
    record = DatastoreRecord(name=body.name, kind=body.kind, config=config)
    await _check_reachable(record)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await store.insert_datastore(conn, record, overwrite=body.overwrite):
            raise Conflict(
                f"datastore {body.name!r} was registered meanwhile; pick another name, or "
                "pass overwrite=True to replace its config"
            )
        if body.set_default:
            await store.set_default_datastore(conn, body.name)
    return datastore_view(await load_datastore(ctx.pool, body.name))


@router.get("/datastores")
async def get_datastores(request: Request) -> list[dict[str, Any]]:
    return [datastore_view(r) for r in await list_datastores(context_of(request).pool)]


@router.get("/datastores/{name}")
async def get_datastore(name: str, request: Request) -> dict[str, Any]:
    return datastore_view(await load_datastore(context_of(request).pool, name))


@router.post("/datastores/{name}/default")
async def set_default(name: str, request: Request) -> dict[str, Any]:
    """``datastore.set_as_default()``: snapshots, logs and outputs without a datastore of
    their own go to this one from now on (what is already stored stays where it is)."""
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        if not await store.set_default_datastore(conn, name):
            raise NotFound(
                f"unknown datastore {name!r}; list the registered ones with GET /api/v1/datastores"
            )
    return datastore_view(await load_datastore(pool, name))
