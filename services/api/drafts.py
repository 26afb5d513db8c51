"""HTTP routes of pipeline drafts (v1's ``PipelineDraft``): a pipeline kept server-side, edited
in place, run, and published when it is ready.

A draft holds a full pipeline specification whose snapshots the SDK uploaded when the draft
was created or updated, so ``submit_run`` and ``publish`` need nothing from the machine that
made it. Every change is checked as a submit would be (structure, compute targets, snapshots,
parameters), so a draft that was accepted can always be run.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from contracts.spec import ParameterValue, PipelineSpec, PipelineSpecError, resolve_parameters
from contracts.status import RunStatus
from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import (
    ApiContext,
    PublishRequest,
    SubmitRequest,
    check_pipeline,
    context_of,
    publish_spec,
    start_run,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)

Labels = dict[str, str]


class _DraftFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=10_000)
    experiment_name: str | None = Field(default=None, min_length=1, max_length=255)
    pipeline: PipelineSpec | None = None
    pipeline_parameters: dict[str, ParameterValue] | None = None
    continue_on_step_failure: bool | None = None
    tags: Labels | None = Field(default=None, max_length=100)
    properties: Labels | None = Field(default=None, max_length=100)


class DraftCreate(_DraftFields):
    name: str = Field(min_length=1, max_length=255)
    experiment_name: str = Field(min_length=1, max_length=255)
    pipeline: PipelineSpec


class DraftUpdate(_DraftFields):
    name: str | None = Field(default=None, min_length=1, max_length=255)


def _spec_of(row: dict[str, Any]) -> PipelineSpec:
    """The pipeline a run of the draft runs: its continue_on_step_failure applied."""
    spec = PipelineSpec.model_validate(row["spec"])
    if row["continue_on_step_failure"] is not None:
        spec = spec.model_copy(update={"continue_on_step_failure": row["continue_on_step_failure"]})
    return spec


async def _checked(ctx: ApiContext, row: dict[str, Any]) -> None:
    spec = _spec_of(row)
    problems = await check_pipeline(ctx, spec)
    try:
        resolve_parameters(spec, row["parameters"])
    except PipelineSpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise Invalid(problems)


async def _row_or_404(conn: Any, draft_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = await store.draft_row(conn, draft_id, lock=lock)
    if row is None:
        raise NotFound(f"no pipeline draft {draft_id!r}; list them with GET /api/v1/drafts")
    return row


@router.post("/drafts", status_code=201)
async def create_draft(body: DraftCreate, request: Request) -> dict[str, Any]:
    """``PipelineDraft.create``."""
    ctx = context_of(request)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": body.name,
        "description": body.description or "",
        "experiment": body.experiment_name,
        "spec": body.pipeline.model_dump(mode="json"),
        "parameters": body.pipeline_parameters or {},
        "continue_on_step_failure": body.continue_on_step_failure,
        "tags": body.tags or {},
        "properties": body.properties or {},
        "last_submitted_run_id": None,
    }
    await _checked(ctx, row)
    async with ctx.pool.acquire() as conn:
        await store.save_draft(conn, row, create=True)
        return store.draft_view(await _row_or_404(conn, row["id"]))


@router.get("/drafts")
async def list_drafts(
    request: Request, tag: list[str] = Query(default_factory=list)
) -> list[dict[str, Any]]:
    """Every draft, or those carrying each ``tag=key=value`` given (v1's ``tags=``)."""
    wanted: Labels = {}
    for t in tag:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise ApiError(f"tag {t!r}: give tag=key=value")
        wanted[key] = value
    return [store.draft_view(r) for r in await store.list_drafts(context_of(request).pool, wanted)]


@router.get("/drafts/{draft_id}")
async def get_draft(draft_id: str, request: Request) -> dict[str, Any]:
    return store.draft_view(await _row_or_404(context_of(request).pool, draft_id))


@router.patch("/drafts/{draft_id}")
async def update_draft(draft_id: str, body: DraftUpdate, request: Request) -> dict[str, Any]:
    """``PipelineDraft.update``: the fields given change (None leaves one as it is)."""
    ctx = context_of(request)
    columns = {
        "experiment_name": "experiment",
        "pipeline": "spec",
        "pipeline_parameters": "parameters",
    }
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await _row_or_404(conn, draft_id, lock=True)
        for field, value in body.model_dump(mode="json", exclude_none=True).items():
            row[columns.get(field, field)] = value
        await _checked(ctx, row)
        await store.save_draft(conn, row, create=False)
        return store.draft_view(await _row_or_404(conn, draft_id))


@router.delete("/drafts/{draft_id}")
async def delete_draft(draft_id: str, request: Request) -> dict[str, Any]:
    async with context_of(request).pool.acquire() as conn:
        await _row_or_404(conn, draft_id)
        await store.delete_draft(conn, draft_id)
    return {"id": draft_id, "deleted": True}


@router.post("/drafts/{draft_id}/runs", status_code=201)
async def submit_draft(draft_id: str, request: Request) -> dict[str, Any]:
    """``PipelineDraft.submit_run``: run the draft as it is now, in its experiment."""
    ctx = context_of(request)
    row = await _row_or_404(ctx.pool, draft_id)
    run_id = await start_run(
        ctx,
        SubmitRequest(
            experiment=row["experiment"],
            pipeline=_spec_of(row),
            parameters=row["parameters"],
            properties={**row["properties"], "pipeline_draft": draft_id},
            tags=row["tags"],
        ),
    )
    async with ctx.pool.acquire() as conn:
        await store.draft_submitted(conn, draft_id, run_id)
    return {"run_id": run_id, "experiment": row["experiment"], "status": RunStatus.QUEUED}


@router.post("/drafts/{draft_id}/publish", status_code=201)
async def publish_draft(draft_id: str, request: Request) -> dict[str, Any]:
    """``PipelineDraft.publish``: a published pipeline with the draft's name and pipeline."""
    ctx = context_of(request)
    row = await _row_or_404(ctx.pool, draft_id)
    body = PublishRequest(name=row["name"], description=row["description"])
    return await publish_spec(ctx, body, _spec_of(row))
