"""HTTP routes of compute targets: register, list, show.

A compute target is a named pool of step runners: its runners form one consumer group on the
target's dispatch topic. Registering one (``ComputeTarget.create`` with
``AmlCompute.provisioning_configuration`` in the SDK) records the pool's size and the machine
size it asks for, and creates the dispatch topic, so a step submitted to the target waits on
its topic for the first runner instead of being refused or lost. Who starts the runners
depends on the deployment: the embedded stack's supervisor starts ``min_nodes`` of them (at
least one); on a cluster, ``min_nodes``/``max_nodes`` are the bounds of the runner autoscaler.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Conflict, NotFound
from services.api.handlers import context_of
from services.runtime.bus import ensure_topics

__all__ = ["COMPUTE_NAME_PATTERN", "ComputeCreate", "InvalidCompute", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)])

#: a letter first, then letters, digits and hyphens (Azure ML's rule, longer names allowed);
#: the name is also the suffix of a Kafka topic, which this keeps valid
COMPUTE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{1,63}$"


class InvalidCompute(ApiError):
    """The compute target's configuration cannot be used; the message names the field."""

    status = 422


class ComputeCreate(BaseModel):
    """``ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(...))``."""

    model_config = ConfigDict(extra="forbid")

    #: checked in the route, so the answer names the field and the rule
    name: str = Field(max_length=255)
    kind: Literal["amlcompute"] = "amlcompute"
    vm_size: str = Field(default="", max_length=255)
    vm_priority: Literal["dedicated", "lowpriority"] = "dedicated"
    min_nodes: int = Field(default=0, ge=0, le=1000)
    max_nodes: int | None = Field(default=None, ge=1, le=1000)
    idle_seconds_before_scaledown: int = Field(default=1800, ge=0)
    description: str = Field(default="", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    created = row.get("created_at")
    return {
        "name": row["name"],
        "kind": row["kind"],
        "config": row.get("config") or {},
        "created_at": created.isoformat() if created is not None else None,
    }


@router.post("/compute", status_code=201)
async def create_compute(body: ComputeCreate, request: Request) -> dict[str, Any]:
    """Record a compute target and create its dispatch topic."""
    ctx = context_of(request)
    if not re.fullmatch(COMPUTE_NAME_PATTERN, body.name):
        raise InvalidCompute(
            f"field 'name': {body.name!r} is not a compute target name; use 2 to 64 letters, "
            "digits and '-', starting with a letter"
        )
    max_nodes = body.max_nodes if body.max_nodes is not None else max(1, body.min_nodes)
    if max_nodes < body.min_nodes:
        raise InvalidCompute(
            f"field 'max_nodes': {max_nodes} is below min_nodes {body.min_nodes}; "
            "max_nodes bounds the pool from above"
        )
    if await store.compute_target(ctx.pool, body.name) is not None:
        raise Conflict(
            f"compute target {body.name!r} exists; get it with ComputeTarget(ws, "
            f"{body.name!r}), or pick another name"
        )
    config = {
        "vm_size": body.vm_size,
        "vm_priority": body.vm_priority,
        "min_nodes": body.min_nodes,
        "max_nodes": max_nodes,
        "idle_seconds_before_scaledown": body.idle_seconds_before_scaledown,
        "description": body.description,
        "tags": body.tags,
    }
    # The topic first: a target that is listed can be submitted to at once.
    await ensure_topics(ctx.settings, [body.name])
    row = await store.insert_compute_target(ctx.pool, body.name, body.kind, config)
    if row is None:
        raise Conflict(f"compute target {body.name!r} was registered meanwhile; pick another name")
    return _view(row)


@router.get("/compute")
async def list_compute(request: Request) -> list[dict[str, Any]]:
    return [_view(r) for r in await store.compute_targets(context_of(request).pool)]


@router.get("/compute/{name}")
async def get_compute(name: str, request: Request) -> dict[str, Any]:
    pool = context_of(request).pool
    row = await store.compute_target(pool, name)
    if row is None:
        known = ", ".join(r["name"] for r in await store.compute_targets(pool)) or "none"
        raise NotFound(f"unknown compute target {name!r}; known: {known}")
    return _view(row)
