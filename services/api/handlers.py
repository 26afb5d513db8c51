"""HTTP routes of the API: workspace objects, blobs, runs, steps, logs, metrics, outputs.

One function per route. Every error is an ``ApiError`` carrying its HTTP status and a message
that says what to fix; ``service.py`` maps them to JSON responses.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from cachetools import LRUCache
from fastapi import APIRouter, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import events as ev
from contracts.snapshot import (
    BLOB_PREFIX,
    DIGEST_PATTERN,
    ManifestEntry,
    SnapshotManifest,
    blob_key,
    digest_bytes,
)
from contracts.spec import (
    ParameterValue,
    PipelineSpec,
    PipelineSpecError,
    resolve_parameters,
    validate_pipeline,
)
from contracts.status import RunStatus
from services.api import store
from services.api.auth import authorize
from services.api.errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from services.api.guard import GuardedRoute
from services.api.settings import ApiSettings
from services.runtime import catalog
from services.runtime.env_artifacts import EnvironmentArtifacts
from services.runtime.outbox import Delivery
from services.runtime.snapshots import SnapshotError, load_manifest
from services.runtime.storage import (
    ObjectStore,
    UnknownDatastore,
    default_datastore,
    open_datastore,
    open_named,
)

__all__ = [
    "ApiContext",
    "PublishRequest",
    "PublishedRunRequest",
    "SubmitRequest",
    "check_pipeline",
    "context_of",
    "publish_spec",
    "router",
    "start_resolved",
    "start_run",
]

router = APIRouter(prefix="/api/v1", dependencies=[Security(authorize)], route_class=GuardedRoute)


class SubmitRequest(BaseModel):
    """``Experiment.submit``: a pipeline, parameter assignments and run options."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(min_length=1, max_length=255)
    pipeline: PipelineSpec
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    regenerate_outputs: bool = False
    #: facts recorded with the run, such as the git commit of each source directory
    properties: dict[str, Any] = Field(default_factory=dict)
    #: the user's labels of the run (``Experiment.submit(..., tags=)``)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)

    @field_validator("properties")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > 64_000:
            raise ValueError("properties must stay under 64 kB of JSON")
        return value


class MissingBlobsRequest(BaseModel):
    digests: list[str] = Field(max_length=100_000)


class ApiContext:
    """What routes need: settings, the database, delivery for emitted events, manifests."""

    def __init__(self, settings: ApiSettings, delivery: Delivery) -> None:
        self.settings = settings
        self.delivery = delivery
        self._manifests: LRUCache[str, SnapshotManifest] = LRUCache(
            maxsize=settings.manifest_cache_size
        )
        #: digest -> (key, size, ETag) of the stored blob last found to hash to it
        self._intact: dict[str, tuple[str, int, str]] = {}

    @property
    def pool(self) -> Any:
        return self.delivery.pool

    async def datastore(self, name: str) -> ObjectStore:
        try:
            return await open_named(self.pool, name)
        except UnknownDatastore as exc:
            raise NotFound(str(exc)) from exc

    async def default_store(self) -> ObjectStore:
        return open_datastore(await default_datastore(self.pool))

    async def manifest(self, digest: str) -> SnapshotManifest:
        """A snapshot manifest (immutable, so cached by digest, least recently used out)."""
        manifest = self._manifests.get(digest)
        if manifest is None:
            manifest = await load_manifest(await self.default_store(), digest)
            self._manifests[digest] = manifest
        return manifest

    async def blob_intact(self, ds: ObjectStore, digest: str) -> bool:
        """Whether ``ds`` holds a blob of ``digest`` whose bytes hash to it.

        Why hash and not only check existence: a blob changed behind the API's back would
        otherwise be reported present forever, and every snapshot using it would fail. Each
        stored version is hashed once: its ETag (for a local datastore inode, mtime and size)
        changes whenever the object is rewritten, so a remembered identity proves the bytes
        are the ones already verified.
        """
        key = blob_key(digest)
        found = await ds.identity(key)
        if len(found) != 1 or found[0][0] != key:
            return False
        if self._intact.get(digest) == found[0]:
            return True
        actual, _ = await ds.content_digest(key)
        if actual != digest:
            self._intact.pop(digest, None)
            return False
        if len(self._intact) >= _INTACT_REMEMBERED:
            self._intact.clear()  # a bound, not an LRU: a miss only costs one more hash
        self._intact[digest] = found[0]
        return True


#: how many verified blob identities an API process remembers
_INTACT_REMEMBERED = 200_000


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _key(path: str) -> str:
    from contracts.snapshot import safe_relative_path

    try:
        return safe_relative_path(path)
    except ValueError as exc:
        raise ApiError(str(exc)) from exc


async def _read_body(request: Request) -> bytes:
    """The raw upload, already bounded by ``max_upload_bytes`` while it streamed (the route
    class, ``guard.GuardedRoute``, refuses a larger one with 413 before it is buffered)."""
    return await request.body()


# -- workspace ---------------------------------------------------------------------------


@router.get("/workspace")
async def get_workspace(request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    default = await ctx.default_store()
    return {"name": "local", "default_datastore": default.name, "api_version": "v1"}


@router.put("/datastores/{name}/objects/{path:path}", status_code=201)
async def put_object(
    name: str, path: str, request: Request, overwrite: bool = False
) -> dict[str, Any]:
    ctx = context_of(request)
    ds = await ctx.datastore(name)
    key = _key(path)
    if ds.record.is_default:
        _refuse_content_addressed(name, key)
    if not overwrite and await ds.exists(key):
        raise Conflict(
            f"{key!r} already exists on datastore {name!r}; pass overwrite=True to replace it"
        )
    body = await _read_body(request)
    unchanged = overwrite and await _holds(ds, key, body)
    if not unchanged:
        await ds.put(key, body)
    return {"datastore": name, "path": key, "size": len(body), "unchanged": unchanged}


async def _holds(ds: ObjectStore, key: str, body: bytes) -> bool:
    """Whether ``key`` already holds exactly ``body``.

    Why: notebooks upload their data with ``overwrite=True`` on every run, and rewriting the
    same bytes changes a local (or Azure) object's ETag, so every step reading it would rerun
    although nothing changed. Skipping the write keeps an object's identity tied to its bytes.
    """
    found = await ds.identity(key)
    if len(found) != 1 or found[0][0] != key or found[0][1] != len(body):
        return False
    digest, _ = await ds.content_digest(key)
    return digest == digest_bytes(body)


#: Prefixes of the default datastore that hold content-addressed data
_CONTENT_ADDRESSED = (BLOB_PREFIX, EnvironmentArtifacts.PREFIX)


def _refuse_content_addressed(name: str, key: str) -> None:
    """Refuse a generic write under the default datastore's blob or environment prefix.

    Why: bytes there are trusted by their key (a digest). Written through this route they
    would bypass the digest check, and a submit token could poison any snapshot or
    environment, a published pipeline's included.
    """
    top = key.split("/", 1)[0]
    if top in _CONTENT_ADDRESSED:
        raise Forbidden(
            f"{key!r} is under {top}/ of the default datastore {name!r}, which holds "
            "content-addressed data written only through digest-checked routes: snapshot blobs "
            "with PUT /api/v1/blobs/{digest} (the SDK does this when it snapshots a source "
            "directory), environment archives by the image builder; put your own data under "
            "another path"
        )


@router.get("/datastores/{name}/objects")
async def list_objects(name: str, request: Request, prefix: str = "") -> list[dict[str, Any]]:
    ds = await context_of(request).datastore(name)
    return [{"path": p, "size": s} for p, s in await ds.listing(_key(prefix) if prefix else "")]


@router.get("/datastores/{name}/objects/{path:path}")
async def get_object(name: str, path: str, request: Request) -> Response:
    ds = await context_of(request).datastore(name)
    key = _key(path)
    if not await ds.exists(key):
        raise NotFound(f"no object {key!r} on datastore {name!r}")
    return Response(await ds.get(key), media_type="application/octet-stream")


# -- content-addressed blobs (snapshots) -------------------------------------------------


@router.post("/blobs/missing")
async def missing_blobs(body: MissingBlobsRequest, request: Request) -> dict[str, list[str]]:
    """The digests whose blobs the client must upload: never uploaded, or stored with bytes
    that no longer hash to the digest (so that an upload repairs them)."""
    ctx = context_of(request)
    ds = await ctx.default_store()
    missing = []
    for digest in dict.fromkeys(body.digests):
        if not _valid_digest(digest):
            raise ApiError(f"{digest!r} is not a digest of the form sha256:<64 hex digits>")
        if not await ctx.blob_intact(ds, digest):
            missing.append(digest)
    return {"missing": missing}


def _valid_digest(digest: str) -> bool:
    import re

    return re.fullmatch(DIGEST_PATTERN, digest) is not None


@router.put("/blobs/{digest}", status_code=201)
async def put_blob(digest: str, request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    if not _valid_digest(digest):
        raise ApiError(f"{digest!r} is not a digest of the form sha256:<64 hex digits>")
    body = await _read_body(request)
    actual = digest_bytes(body)
    if actual != digest:
        raise ApiError(f"the uploaded bytes hash to {actual}, not {digest}; upload again")
    ds = await ctx.default_store()
    await ds.put(blob_key(digest), body)
    return {"digest": digest, "size": len(body)}


class ManifestChange(BaseModel):
    """One path of a snapshot: its new entry, or ``None`` when the file is gone."""

    model_config = ConfigDict(extra="forbid")

    path: str
    entry: ManifestEntry | None


class SnapshotDelta(BaseModel):
    """A manifest given as changes to one the server already has."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(pattern=DIGEST_PATTERN)
    digest: str = Field(pattern=DIGEST_PATTERN)
    changes: list[ManifestChange] = Field(max_length=1_000_000)


@router.post("/snapshots", status_code=201)
async def put_snapshot_delta(body: SnapshotDelta, request: Request) -> dict[str, Any]:
    """Store a snapshot manifest sent as changes to ``base``.

    Why: re-submitting a large tree with one changed file should send that file, not a
    manifest of every file. The result must hash to ``digest``, which the client computed
    from its full manifest, so nothing is stored unless both sides agree.
    """
    ctx = context_of(request)
    ds = await ctx.default_store()
    try:
        base = await load_manifest(ds, body.base)
    except SnapshotError as exc:
        raise NotFound(f"base snapshot unknown ({exc}); upload the full manifest") from exc
    files = {f.path: f for f in base.files}
    for change in body.changes:
        if change.entry is None:
            files.pop(change.path, None)
        else:
            if change.entry.path != change.path:
                raise ApiError(f"change for {change.path!r} carries entry {change.entry.path!r}")
            files[change.path] = change.entry
    try:
        manifest = SnapshotManifest(files=list(files.values()))
    except ValueError as exc:
        raise Invalid([f"the resulting manifest is invalid: {exc}"]) from exc
    if manifest.digest != body.digest:
        raise Invalid(
            [
                f"base plus changes hash to {manifest.digest}, not {body.digest}; "
                "upload the full manifest"
            ]
        )
    missing = [
        c.entry.digest
        for c in body.changes
        if c.entry is not None and not await ctx.blob_intact(ds, c.entry.digest)
    ]
    if missing:
        raise Invalid(
            [f"blob {d} was never uploaded (or its stored bytes do not match)" for d in missing]
        )
    await ds.put(blob_key(manifest.digest), manifest.canonical_bytes())
    return {"digest": manifest.digest, "files": len(manifest.files)}


# -- runs --------------------------------------------------------------------------------


async def _check_snapshots(ctx: ApiContext, spec: PipelineSpec) -> list[str]:
    problems = []
    for step in spec.steps:
        if not step.runs_on_runner or not step.snapshot:
            continue  # transfers have no snapshot; validate_pipeline reports a missing one
        try:
            manifest = await ctx.manifest(step.snapshot)
        except SnapshotError as exc:
            problems.append(f"step {step.name!r}: {exc}; upload the snapshot before submitting")
            continue
        if step.script_name and step.script_name not in {f.path for f in manifest.files}:
            problems.append(
                f"step {step.name!r}: script {step.script_name!r} is not in its source "
                f"directory's snapshot; check script_name and source_directory"
            )
    return problems


@router.post("/runs", status_code=201)
async def submit_run(body: SubmitRequest, request: Request) -> dict[str, Any]:
    """Validate the pipeline fully, then record the run and emit ``RunRequested`` together."""
    run_id = await start_run(context_of(request), body)
    return {"run_id": run_id, "status": RunStatus.QUEUED}


async def check_pipeline(ctx: ApiContext, spec: PipelineSpec) -> list[str]:
    """Every reason ``spec`` cannot run: structure, compute targets, snapshots and scripts."""
    problems: list[str] = []
    try:
        validate_pipeline(
            spec, compute_targets=[t["name"] for t in await store.compute_targets(ctx.pool)]
        )
    except PipelineSpecError as exc:
        problems.extend(exc.problems)
    problems.extend(await _check_snapshots(ctx, spec))
    return problems


async def start_run(ctx: ApiContext, body: SubmitRequest) -> str:
    problems = await check_pipeline(ctx, body.pipeline)
    try:
        params = resolve_parameters(body.pipeline, body.parameters)
    except PipelineSpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise Invalid(problems)
    run_id = str(uuid.uuid4())
    async with ctx.delivery.transaction(None) as tx:
        await store.insert_queued_run(
            tx.conn,
            run_id,
            body.experiment,
            body.pipeline.model_dump(mode="json"),
            dict(params),
            body.regenerate_outputs,
            body.properties,
            body.tags,
        )
        tx.emit(
            ev.RunRequested(
                run_id=run_id,
                experiment=body.experiment,
                pipeline=body.pipeline,
                parameters=body.parameters,
                regenerate_outputs=body.regenerate_outputs,
            )
        )
    return run_id


# -- published pipelines ---------------------------------------------------------------


class PublishRequest(BaseModel):
    """Publish a pipeline: given in full, or the pipeline of an earlier run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    version: str = Field(default="", max_length=100)
    pipeline: PipelineSpec | None = None
    run_id: str | None = None
    #: replaces the pipeline's own setting in what is published (v1's ``publish(...,
    #: continue_on_step_failure=)``)
    continue_on_step_failure: bool | None = None


class PublishedRunRequest(BaseModel):
    """The body Azure ML clients POST to a published pipeline's endpoint.

    Why unknown fields are refused: a misspelt ``ParameterAsignments`` that is ignored runs the
    pipeline with its defaults while the caller believes the values were applied.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    experiment: str = Field(alias="ExperimentName", min_length=1, max_length=255)
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict, alias="ParameterAssignments"
    )
    data_paths: dict[str, Any] = Field(default_factory=dict, alias="DataPathAssignments")
    datasets: dict[str, Any] = Field(
        default_factory=dict, alias="DataSetDefinitionValueAssignments"
    )
    #: who started the run, as the v1 SDK sends it ("SDK"); recorded nowhere, accepted
    run_source: str | None = Field(default=None, alias="RunSource", max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            accepted = [f.alias or n for n, f in cls.model_fields.items()]
            unknown = sorted(k for k in data if k not in {*accepted, *cls.model_fields})
            if unknown:
                raise ValueError(
                    f"unknown field(s) {', '.join(unknown)}; the accepted fields are "
                    + ", ".join(accepted)
                )
        return data

    @model_validator(mode="after")
    def _no_data_parameters(self) -> PublishedRunRequest:
        for field, given in (
            ("DataPathAssignments", self.data_paths),
            ("DataSetDefinitionValueAssignments", self.datasets),
        ):
            if given:
                raise ValueError(
                    f"{field} assigns DataPath or Dataset pipeline parameters "
                    f"({', '.join(sorted(given))}), which headrace does not support yet: "
                    "pass the path as a string PipelineParameter in ParameterAssignments, "
                    "or register the data as a dataset version and submit with that version"
                )
        return self


async def _published_or_404(ctx: ApiContext, pipeline_id: str) -> tuple[dict[str, Any], Any]:
    found = await store.published(ctx.pool, pipeline_id)
    if found is None:
        raise NotFound(f"no published pipeline {pipeline_id!r}; list them with GET /pipelines")
    return found


@router.post("/pipelines", status_code=201)
async def publish_pipeline(body: PublishRequest, request: Request) -> dict[str, Any]:
    """Publish an immutable pipeline (its snapshots pinned) behind its own endpoint."""
    ctx = context_of(request)
    if (body.pipeline is None) == (body.run_id is None):
        raise ApiError("give either 'pipeline' or 'run_id' (the run whose pipeline to publish)")
    spec = body.pipeline
    if spec is None:
        raw = await store.run_spec(ctx.pool, str(body.run_id))
        if raw is None:
            raise NotFound(f"no run {body.run_id!r} to publish")
        spec = PipelineSpec.model_validate(raw)
    if body.continue_on_step_failure is not None:
        spec = spec.model_copy(update={"continue_on_step_failure": body.continue_on_step_failure})
    return await publish_spec(ctx, body, spec)


async def publish_spec(ctx: ApiContext, body: PublishRequest, spec: PipelineSpec) -> dict[str, Any]:
    """Check ``spec`` as a submit would, then publish it under ``body``'s name and version."""
    if problems := await check_pipeline(ctx, spec):
        raise Invalid(problems)
    pipeline_id = str(uuid.uuid4())
    async with ctx.pool.acquire() as conn:
        view = await store.publish(
            conn,
            pipeline_id,
            body.name,
            body.description,
            body.version,
            spec.model_dump(mode="json"),
            body.run_id,
        )
    return {**view, "endpoint": f"/api/v1/pipelines/{pipeline_id}/runs"}


@router.get("/pipelines")
async def list_pipelines(
    request: Request, name: str | None = None, active_only: bool = True
) -> list[dict[str, Any]]:
    return await store.list_published(context_of(request).pool, name, active_only)


@router.get("/pipelines/{pipeline_id}")
async def get_pipeline(pipeline_id: str, request: Request) -> dict[str, Any]:
    view, _ = await _published_or_404(context_of(request), pipeline_id)
    return {**view, "endpoint": f"/api/v1/pipelines/{pipeline_id}/runs"}


async def _set_status(request: Request, pipeline_id: str, status: str) -> dict[str, Any]:
    ctx = context_of(request)
    await _published_or_404(ctx, pipeline_id)
    await store.set_published_status(ctx.pool, pipeline_id, status)
    return {"id": pipeline_id, "status": status}


@router.post("/pipelines/{pipeline_id}/disable")
async def disable_pipeline(pipeline_id: str, request: Request) -> dict[str, Any]:
    """Refuse new runs of a published pipeline (it stays listed with ``active_only=false``)."""
    return await _set_status(request, pipeline_id, "Disabled")


@router.post("/pipelines/{pipeline_id}/enable")
async def enable_pipeline(pipeline_id: str, request: Request) -> dict[str, Any]:
    return await _set_status(request, pipeline_id, "Active")


@router.get("/pipelines/{pipeline_id}/parameters")
async def pipeline_parameters_schema(pipeline_id: str, request: Request) -> dict[str, Any]:
    """JSON Schema of the ParameterAssignments the endpoint accepts."""
    view, _ = await _published_or_404(context_of(request), pipeline_id)
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"parameters of {view['name']}",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            p["name"]: {"type": kinds[type(p["default"])], "default": p["default"]}
            for p in view["parameters"]
        },
    }


@router.post("/pipelines/{pipeline_id}/runs", status_code=201)
async def run_published(
    pipeline_id: str, body: PublishedRunRequest, request: Request
) -> dict[str, Any]:
    """Start a run of a published pipeline with new parameter values."""
    ctx = context_of(request)
    found = await catalog.resolve_published(ctx.pool, pipeline_id)
    return await start_resolved(ctx, found, body)


async def start_resolved(
    ctx: ApiContext, found: catalog.ResolvedPipeline, body: PublishedRunRequest
) -> dict[str, Any]:
    """Start a run of a resolved published pipeline; the seed's ``{"Id": ...}`` reply."""
    run_id = await start_run(
        ctx,
        SubmitRequest(
            experiment=body.experiment,
            pipeline=found.spec,
            parameters=body.parameters,
            properties=found.properties,
        ),
    )
    return {"Id": run_id, "run_id": run_id, "status": RunStatus.QUEUED}


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    run_id: str, request: Request, body: CancelRequest | None = None
) -> dict[str, Any]:
    """Ask the scheduler to cancel a run; answers at once, the run ends Canceled shortly."""
    ctx = context_of(request)
    status = await ctx.pool.fetchval("SELECT status FROM runs WHERE run_id = $1", run_id)
    if status is None:
        raise NotFound(f"no run {run_id!r}; nothing to cancel")
    if status not in RunStatus.active():
        raise Conflict(f"run {run_id!r} is already {status}; nothing to cancel")
    async with ctx.delivery.transaction(None) as tx:
        tx.emit(ev.RunCancelRequested(run_id=run_id, reason=body.reason if body else ""))
    return {"run_id": run_id, "status": "Canceling"}


@router.get("/runs")
async def list_runs(
    request: Request, experiment: str | None = None, limit: int = Query(50, ge=1, le=1000)
) -> list[dict[str, Any]]:
    return await store.list_runs(context_of(request).pool, experiment, limit)


@router.get("/experiments")
async def list_experiments(request: Request) -> list[dict[str, Any]]:
    """Every experiment that has runs, with how many and when the latest was submitted."""
    return await store.list_experiments(context_of(request).pool)


@router.get("/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    detail = await store.run_detail(context_of(request).pool, run_id)
    if detail is None:
        raise NotFound(f"no run {run_id!r}; list runs with GET /api/v1/runs")
    return detail


@router.get("/runs/{run_id}/steps")
async def get_steps(run_id: str, request: Request) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = (await get_run(run_id, request))["steps"]
    return steps


@router.get("/runs/{run_id}/steps/{step}/logs/{stream}")
async def get_log(
    run_id: str, step: str, stream: Literal["stdout", "stderr", "mount"], request: Request
) -> Response:
    ctx = context_of(request)
    row = await store.step_log(ctx.pool, run_id, step, stream)
    if row is None:
        raise NotFound(
            f"no {stream} log for step {step!r} of run {run_id!r} yet; logs appear once the "
            "step has run"
        )
    ds = await ctx.datastore(row["datastore"])
    return Response(await ds.get(row["path"]), media_type="text/plain; charset=utf-8")


@router.get("/runs/{run_id}/steps/{step}/metrics")
async def get_metrics(run_id: str, step: str, request: Request) -> list[dict[str, Any]]:
    return await store.step_metrics(context_of(request).pool, run_id, step)


async def _output(ctx: ApiContext, run_id: str, step: str, name: str) -> tuple[ObjectStore, str]:
    row = await store.step_output(ctx.pool, run_id, step, name)
    if row is None:
        raise NotFound(f"step {step!r} of run {run_id!r} has no committed output {name!r}")
    return await ctx.datastore(row["datastore"]), row["path"]


@router.get("/runs/{run_id}/steps/{step}/outputs/{name}")
async def get_output(run_id: str, step: str, name: str, request: Request) -> dict[str, Any]:
    ds, path = await _output(context_of(request), run_id, step, name)
    files = [{"path": key[len(path) + 1 :], "size": size} for key, size in await ds.listing(path)]
    return {"datastore": ds.name, "path": path, "files": files}


@router.get("/runs/{run_id}/steps/{step}/outputs/{name}/files/{file:path}")
async def get_output_file(
    run_id: str, step: str, name: str, file: str, request: Request
) -> Response:
    ds, path = await _output(context_of(request), run_id, step, name)
    key = f"{path}/{_key(file)}"
    if not await ds.exists(key):
        raise NotFound(f"output {name!r} of step {step!r} has no file {file!r}")
    return Response(await ds.get(key), media_type="application/octet-stream")


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: doc}


def fingerprint_diff(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field differences between two fingerprint documents."""
    a, b = _flatten(now), _flatten(before)
    return [
        {"field": k, "now": a.get(k), "before": b.get(k)}
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


@router.get("/runs/{run_id}/steps/{step}/reuse")
async def why_not_reused(run_id: str, step: str, request: Request) -> dict[str, Any]:
    """The step's fingerprint and, against the closest earlier one, what differs."""
    ctx = context_of(request)
    row = await store.fingerprint_of(ctx.pool, run_id, step)
    if row is None or row["fingerprint_doc"] is None:
        raise NotFound(f"step {step!r} of run {run_id!r} has no fingerprint (not released yet)")
    doc = row["fingerprint_doc"]
    reused = (
        {"run_id": row["reused_from_run"], "step": row["reused_from_step"]}
        if row["reused_from_run"]
        else None
    )
    closest: dict[str, Any] | None = None
    diff: list[dict[str, Any]] = []
    for cand in await store.earlier_fingerprints(ctx.pool, run_id, step):
        d = fingerprint_diff(doc, cand["fingerprint_doc"])
        if closest is None or len(d) < len(diff):
            closest = {
                "run_id": cand["run_id"],
                "step": cand["name"],
                "fingerprint": cand["fingerprint"],
            }
            diff = d
    return {
        "run_id": run_id,
        "step": step,
        "fingerprint": row["fingerprint"],
        "reused_from": reused,
        "closest": closest,
        "differences": diff,
    }


@router.get("/cache")
async def list_cache(
    request: Request, limit: int = Query(100, ge=1, le=10000)
) -> list[dict[str, Any]]:
    """Reusable step results, newest first."""
    return await store.cache_entries(context_of(request).pool, limit)


@router.delete("/cache")
async def evict_cache(
    request: Request, fingerprint: str | None = None, run_id: str | None = None
) -> dict[str, int]:
    """Forget reusable results (by fingerprint or source run); their steps will run again."""
    if fingerprint is None and run_id is None:
        raise ApiError("say what to evict: ?fingerprint=... or ?run_id=...")
    return {"evicted": await store.evict(context_of(request).pool, fingerprint, run_id)}


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> dict[str, str]:
    await context_of(request).pool.fetchval("SELECT 1")
    return {"status": "ok"}
