"""HTTP routes of schedules (v1's ``Schedule``): run a published pipeline or an endpoint on a
recurrence, or when objects under a datastore path are added or changed.

The API only records what is wanted and when it is next due; the schedule firer
(``services/schedule_firer``) fires. Everything a firing would refuse later (an unknown
pipeline, parameters that do not fit it, an unknown datastore) is refused here, at creation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.schedule import Recurrence
from contracts.spec import ParameterValue, PipelineSpec, PipelineSpecError, resolve_parameters
from services.api import store
from services.api.auth import authorize
from services.api.errors import Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.handlers import context_of
from services.runtime import catalog
from services.runtime.storage import UnknownDatastore, load_datastore

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)


class _Trigger(BaseModel):
    """The fields ``Schedule.create`` and ``Schedule.update`` share."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=10_000)
    recurrence: Recurrence | None = None
    pipeline_parameters: dict[str, ParameterValue] | None = None
    continue_on_step_failure: bool | None = None
    datastore: str | None = Field(default=None, min_length=1, max_length=255)
    #: minutes between two listings of a datastore trigger's path (v1's default: 5)
    polling_interval: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    path_on_datastore: str | None = Field(default=None, max_length=1024)
    data_path_parameter_name: str | None = Field(default=None, min_length=1, max_length=255)


class ScheduleCreate(_Trigger):
    name: str = Field(min_length=1, max_length=255)
    experiment_name: str = Field(min_length=1, max_length=255)
    pipeline_id: str | None = Field(default=None, min_length=1, max_length=255)
    pipeline_endpoint_id: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one_each(self) -> Self:
        if (self.pipeline_id is None) == (self.pipeline_endpoint_id is None):
            raise ValueError("give exactly one of pipeline_id or pipeline_endpoint_id")
        if (self.recurrence is None) == (self.datastore is None):
            raise ValueError(
                "give exactly one of recurrence (a time-based schedule) or datastore (a "
                "schedule that fires when objects under path_on_datastore change)"
            )
        return self


class ScheduleUpdate(_Trigger):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    status: Literal["Active", "Disabled"] | None = None


async def _pipeline_of(conn: Any, pipeline_id: str | None, endpoint_id: str | None) -> Any:
    """The spec a schedule would run now (its endpoint's default version for an endpoint)."""
    try:
        if pipeline_id is not None:
            return (await catalog.resolve_published(conn, pipeline_id)).spec
        return (await catalog.resolve_endpoint(conn, str(endpoint_id), None)).spec
    except catalog.PublishedNotFound as exc:
        raise NotFound(str(exc)) from None


def _check_trigger(spec: PipelineSpec, row: dict[str, Any]) -> list[str]:
    """What makes the schedule unable to start its pipeline."""
    problems: list[str] = []
    params = dict(row["parameters"])
    name = row["data_path_parameter_name"]
    if row["datastore"] is None:
        for field in ("path_on_datastore", "data_path_parameter_name"):
            if row[field] is not None:
                problems.append(f"{field} applies to a datastore-triggered schedule only")
    elif name is not None:
        declared = {p.name: p.default for p in spec.parameters}
        if not isinstance(declared.get(name), str):
            problems.append(
                f"data_path_parameter_name {name!r} must name a string pipeline parameter of "
                "the pipeline, which receives the changed object's path; the pipeline declares "
                + (", ".join(f"{k}: {type(v).__name__}" for k, v in declared.items()) or "none")
            )
        else:
            params[name] = ""
    try:
        resolve_parameters(spec, params)
    except PipelineSpecError as exc:
        problems.extend(exc.problems)
    return problems


def _next_due(row: dict[str, Any], now: datetime) -> datetime | None:
    """When the firer should first look at the schedule from ``now``."""
    if row["status"] != "Active":
        return None
    if row["recurrence"] is None:
        return now  # a datastore trigger lists its path at once: that is its baseline
    recurrence = Recurrence.model_validate(row["recurrence"])
    return recurrence.next_after(now - timedelta(microseconds=1), row["created_at"])


async def _view_or_404(conn: Any, schedule_id: str) -> dict[str, Any]:
    view = await store.schedule_view(conn, schedule_id)
    if view is None:
        raise NotFound(f"no schedule {schedule_id!r}; list them with GET /api/v1/schedules")
    return view


async def _save(conn: Any, row: dict[str, Any], *, create: bool) -> dict[str, Any]:
    spec = await _pipeline_of(conn, row["pipeline_id"], row["pipeline_endpoint_id"])
    if problems := _check_trigger(spec, row):
        raise Invalid(problems)
    if row["datastore"] is not None:
        try:
            await load_datastore(conn, row["datastore"])
        except UnknownDatastore as exc:
            raise NotFound(str(exc)) from None
    row["next_due"] = _next_due(row, datetime.now(UTC))
    await store.save_schedule(conn, row, create=create)
    return await _view_or_404(conn, row["id"])


@router.post("/schedules", status_code=201)
async def create_schedule(body: ScheduleCreate, request: Request) -> dict[str, Any]:
    """``Schedule.create`` / ``create_for_pipeline_endpoint``."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": body.name,
        "description": body.description or "",
        "pipeline_id": body.pipeline_id,
        "pipeline_endpoint_id": None,
        "experiment": body.experiment_name,
        "parameters": body.pipeline_parameters or {},
        "continue_on_step_failure": body.continue_on_step_failure,
        "status": "Active",
        "recurrence": body.recurrence.model_dump(mode="json") if body.recurrence else None,
        "datastore": body.datastore,
        "path_on_datastore": body.path_on_datastore,
        "polling_interval_minutes": (body.polling_interval or 5) if body.datastore else None,
        "data_path_parameter_name": body.data_path_parameter_name,
        "created_at": now,
    }
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        if body.pipeline_endpoint_id is not None:
            # Stored by id, so renaming the endpoint keeps the schedule.
            view = await store.endpoint_view(conn, body.pipeline_endpoint_id)
            if view is None:
                raise NotFound(f"no pipeline endpoint {body.pipeline_endpoint_id!r}")
            row["pipeline_endpoint_id"] = view["id"]
        return await _save(conn, row, create=True)


@router.get("/schedules")
async def list_schedules(
    request: Request,
    pipeline_id: str | None = None,
    pipeline_endpoint_id: str | None = None,
    active_only: bool = True,
) -> list[dict[str, Any]]:
    return await store.list_schedules(
        context_of(request).pool, pipeline_id, pipeline_endpoint_id, active_only
    )


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    return await _view_or_404(context_of(request).pool, schedule_id)


@router.patch("/schedules/{schedule_id}")
async def update_schedule(
    schedule_id: str, body: ScheduleUpdate, request: Request
) -> dict[str, Any]:
    """``Schedule.update``: the fields given change; the next due time is computed again."""
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        row = await store.schedule_row(conn, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id!r}; list them with GET /api/v1/schedules")
        # None means "leave as it is", as in v1's update(...).
        given = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        if "recurrence" in given and row["recurrence"] is None:
            raise Invalid(
                ["a datastore-triggered schedule takes no recurrence; create a time-based one"]
            )
        if "datastore" in given and row["datastore"] is None:
            raise Invalid(["a time-based schedule takes no datastore; create a datastore one"])
        for field, value in given.items():
            row[_COLUMNS.get(field, field)] = value
        return await _save(conn, row, create=False)


#: request fields stored under another column name
_COLUMNS = {"pipeline_parameters": "parameters", "polling_interval": "polling_interval_minutes"}


async def _set_status(request: Request, schedule_id: str, status: str) -> dict[str, Any]:
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        row = await store.schedule_row(conn, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id!r}; list them with GET /api/v1/schedules")
        row["status"] = status
        return await _save(conn, row, create=False)


@router.post("/schedules/{schedule_id}/disable")
async def disable_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    """It fires no more (and does not catch up what came due while disabled)."""
    return await _set_status(request, schedule_id, "Disabled")


@router.post("/schedules/{schedule_id}/enable")
async def enable_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    return await _set_status(request, schedule_id, "Active")


@router.get("/schedules/{schedule_id}/firings")
async def schedule_firings(
    schedule_id: str, request: Request, limit: int = Query(100, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """What each occurrence did, newest first: the run it started or why it was skipped."""
    pool = context_of(request).pool
    await _view_or_404(pool, schedule_id)
    return await store.schedule_firings(pool, schedule_id, limit)
