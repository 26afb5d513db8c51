"""HTTP routes of registered environments and of the image builder's build log.

Registering is like the seed's ``env.register(ws)``: without a version, an unchanged
definition returns the latest version and a changed one becomes the next ("1", "2", ...);
with a version, it must be new or identical, since versions are immutable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.environment import EnvironmentDefinition
from services.api.auth import authorize
from services.api.errors import Conflict, Invalid, NotFound
from services.api.handlers import context_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)])


class RegisterEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str | None = None
    pip_requirements: list[str] = Field(default_factory=list)
    env_vars: dict[str, str] = Field(default_factory=dict)


def _view(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "version": row["version"],
        "definition": row["definition"],
        "created_at": row["created_at"].isoformat(),
    }


async def _latest(conn: Any, name: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM registered_environments WHERE name = $1"
        " ORDER BY created_at DESC, version DESC LIMIT 1",
        name,
    )


@router.post("/environments", status_code=201)
async def register_environment(body: RegisterEnvironment, request: Request) -> dict[str, Any]:
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        # one registration per name at a time, so version numbers never collide
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))", body.name)
        latest = await _latest(conn, body.name)
        version = body.version
        if version is None:
            if latest is not None and _same(latest["definition"], body):
                return _view(latest)
            count = await conn.fetchval(
                "SELECT count(*) FROM registered_environments WHERE name = $1", body.name
            )
            version = str(count + 1)
        try:
            defn = EnvironmentDefinition(
                name=body.name,
                version=version,
                pip_requirements=body.pip_requirements,
                env_vars=body.env_vars,
            )
        except ValidationError as exc:
            raise Invalid([str(e["msg"]) for e in exc.errors()]) from None
        existing = await conn.fetchrow(
            "SELECT * FROM registered_environments WHERE name = $1 AND version = $2",
            defn.name,
            defn.version,
        )
        if existing is not None:
            if _same(existing["definition"], body):
                return _view(existing)
            raise Conflict(
                f"environment {defn.name!r} version {defn.version!r} is registered with another "
                "definition; versions are immutable: register without a version to get the next"
            )
        row = await conn.fetchrow(
            "INSERT INTO registered_environments (name, version, definition)"
            " VALUES ($1, $2, $3) RETURNING *",
            defn.name,
            defn.version,
            defn.model_dump(mode="json"),
        )
        return _view(row)


def _same(stored: dict[str, Any], body: RegisterEnvironment) -> bool:
    return bool(
        stored.get("pip_requirements") == [r.strip() for r in body.pip_requirements]
        and stored.get("env_vars") == body.env_vars
    )


@router.get("/environments")
async def list_environments(request: Request) -> list[dict[str, Any]]:
    rows = await context_of(request).pool.fetch(
        "SELECT DISTINCT ON (name) * FROM registered_environments"
        " ORDER BY name, created_at DESC, version DESC"
    )
    return [_view(r) for r in rows]


@router.get("/environments/builds")
async def list_builds(
    request: Request, environment: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Real builds (cache hits record none), newest first."""
    rows = await context_of(request).pool.fetch(
        "SELECT * FROM environment_builds WHERE ($1::text IS NULL OR environment = $1)"
        " ORDER BY finished_at DESC LIMIT $2",
        environment,
        min(max(limit, 1), 1000),
    )
    return [
        {
            "environment": r["environment"],
            "digest": r["digest"],
            "status": r["status"],
            "instance": r["instance"],
            "seconds": r["seconds"],
            "log_key": r["log_key"],
            "reason": r["reason"],
            "finished_at": r["finished_at"].isoformat(),
        }
        for r in rows
    ]


@router.get("/environments/{name}")
async def get_environment(
    name: str, request: Request, version: str | None = None
) -> dict[str, Any]:
    pool = context_of(request).pool
    if version is None:
        row = await _latest(pool, name)
    else:
        row = await pool.fetchrow(
            "SELECT * FROM registered_environments WHERE name = $1 AND version = $2",
            name,
            version,
        )
    if row is None:
        which = f"version {version!r} of " if version else ""
        raise NotFound(
            f"no {which}environment {name!r} is registered; register it with env.register(ws)"
        )
    return _view(row)
