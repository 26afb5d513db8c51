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
from services.api import store
from services.api.auth import authorize
from services.api.errors import Conflict, Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import context_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)


class RegisterEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str | None = None
    pip_requirements: list[str] = Field(default_factory=list)
    env_vars: dict[str, str] = Field(default_factory=dict)


def _same(stored: dict[str, Any], defn: EnvironmentDefinition) -> bool:
    """Whether a registered definition holds what ``defn`` asks for (versions aside)."""
    return bool(
        stored.get("pip_requirements") == defn.pip_requirements
        and stored.get("env_vars") == defn.env_vars
    )


@router.post("/environments", status_code=201)
async def register_environment(body: RegisterEnvironment, request: Request) -> dict[str, Any]:
    try:  # validated first, so comparisons below see normalised requirement lines
        asked = EnvironmentDefinition(
            name=body.name,
            version=body.version or "1",
            pip_requirements=body.pip_requirements,
            env_vars=body.env_vars,
        )
    except ValidationError as exc:
        raise Invalid([str(e["msg"]) for e in exc.errors()]) from None
    pool = context_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_versions(conn, "environment", asked.name)
        if body.version is None:
            latest = await store.environment_version(conn, asked.name, None)
            if latest is not None and _same(latest["definition"], asked):
                return latest
            version = str(await store.environment_count(conn, asked.name) + 1)
        else:
            version = body.version
            existing = await store.environment_version(conn, asked.name, version)
            if existing is not None:
                if _same(existing["definition"], asked):
                    return existing
                raise Conflict(
                    f"environment {asked.name!r} version {version!r} is registered with another "
                    "definition; versions are immutable: register without a version to get the "
                    "next"
                )
        defn = asked.model_copy(update={"version": version})
        return await store.insert_environment(
            conn, defn.name, defn.version, defn.model_dump(mode="json")
        )


@router.get("/environments")
async def list_environments(request: Request) -> list[dict[str, Any]]:
    return await store.latest_environments(context_of(request).pool)


@router.get("/environments/builds")
async def list_builds(
    request: Request, environment: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Real builds (cache hits record none), newest first."""
    return await store.environment_builds(
        context_of(request).pool, environment, min(max(limit, 1), 1000)
    )


@router.get("/environments/{name}")
async def get_environment(
    name: str, request: Request, version: str | None = None
) -> dict[str, Any]:
    found = await store.environment_version(context_of(request).pool, name, version)
    if found is None:
        which = f"version {version!r} of " if version else ""
        raise NotFound(
            f"no {which}environment {name!r} is registered; register it with env.register(ws)"
        )
    return found
