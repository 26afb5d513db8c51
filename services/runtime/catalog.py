"""Which pipeline a run request means: a published pipeline, or an endpoint's version.

Shared by the API (REST submit) and the scheduler (a ``RunRequested`` event naming a published
pipeline or endpoint), so both refuse the same things with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.spec import PipelineSpec
from services.runtime.errors import PermanentError

__all__ = [
    "PublishedDisabled",
    "PublishedNotFound",
    "ResolvedPipeline",
    "resolve_endpoint",
    "resolve_published",
]


class PublishedNotFound(PermanentError):
    """No published pipeline, endpoint or endpoint version by that id."""


class PublishedDisabled(PermanentError):
    """The published pipeline or endpoint refuses runs."""


@dataclass(frozen=True)
class ResolvedPipeline:
    pipeline_id: str
    name: str
    spec: PipelineSpec
    endpoint_id: str | None = None
    endpoint_version: str | None = None

    @property
    def properties(self) -> dict[str, str]:
        """Recorded on the run: where it came from."""
        out = {"published_pipeline": self.pipeline_id}
        if self.endpoint_id is not None:
            out |= {
                "pipeline_endpoint": self.endpoint_id,
                "pipeline_version": str(self.endpoint_version),
            }
        return out


async def resolve_published(conn: Any, pipeline_id: str) -> ResolvedPipeline:
    """The active published pipeline ``pipeline_id``."""
    row = await conn.fetchrow(
        "SELECT id, name, status, spec FROM published_pipelines WHERE id = $1", pipeline_id
    )
    if row is None:
        raise PublishedNotFound(
            f"no published pipeline {pipeline_id!r}; list them with GET /api/v1/pipelines"
        )
    if row["status"] != "Active":
        raise PublishedDisabled(
            f"published pipeline {row['name']!r} ({pipeline_id}) is disabled; enable it "
            "(POST /api/v1/pipelines/{id}/enable) or use another version"
        )
    return ResolvedPipeline(row["id"], row["name"], PipelineSpec.model_validate(row["spec"]))


async def resolve_endpoint(conn: Any, endpoint: str, version: str | None) -> ResolvedPipeline:
    """The pipeline behind ``endpoint`` (its id or name) at ``version``, or its default."""
    ep = await conn.fetchrow(
        "SELECT * FROM pipeline_endpoints WHERE id = $1 OR name = $1", endpoint
    )
    if ep is None:
        raise PublishedNotFound(
            f"no pipeline endpoint {endpoint!r}; list them with GET /api/v1/endpoints"
        )
    if ep["status"] != "Active":
        raise PublishedDisabled(f"pipeline endpoint {ep['name']!r} is disabled; enable it first")
    wanted = ep["default_version"] if version is None else version
    pipeline_id = await conn.fetchval(
        "SELECT pipeline_id FROM pipeline_endpoint_versions"
        " WHERE endpoint_id = $1 AND version = $2",
        ep["id"],
        wanted,
    )
    if pipeline_id is None:
        known = await conn.fetch(
            "SELECT version FROM pipeline_endpoint_versions WHERE endpoint_id = $1"
            " ORDER BY created_at",
            ep["id"],
        )
        raise PublishedNotFound(
            f"pipeline endpoint {ep['name']!r} has no version {wanted!r}; its versions are "
            + ", ".join(repr(r["version"]) for r in known)
        )
    found = await resolve_published(conn, pipeline_id)
    return ResolvedPipeline(found.pipeline_id, found.name, found.spec, ep["id"], wanted)
