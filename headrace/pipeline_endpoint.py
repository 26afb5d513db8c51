"""``PipelineEndpoint``: one stable URL in front of numbered versions of a published pipeline.

As in the seed: versions are "0", "1", ...; ``add`` appends one, ``add_default`` appends one
and makes it the default, ``set_default_version`` moves the default. Callers keep POSTing to
``endpoint`` whatever the versions behind it.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from contracts.spec import ParameterValue
from headrace.published import ApiObject, PublishedPipeline

if TYPE_CHECKING:
    from headrace.experiment import PipelineRun
    from headrace.workspace import Workspace

__all__ = ["PipelineEndpoint"]


class PipelineEndpoint(ApiObject):
    """A versioned endpoint, read from the API (``get``/``publish`` return fresh views)."""

    @property
    def default_version(self) -> str:
        return str(self._info["default_version"])

    @property
    def endpoint(self) -> str:
        """The URL to POST ``{"ExperimentName", "ParameterAssignments", "PipelineVersion"}``."""
        return f"{self.workspace.api_url.rstrip('/')}{self._info['endpoint']}"

    @property
    def _path(self) -> str:
        return f"/endpoints/{quote(self.id)}"

    @classmethod
    def publish(
        cls, workspace: Workspace, name: str, description: str, pipeline: PublishedPipeline
    ) -> PipelineEndpoint:
        """A new endpoint whose version "0" (the default) is ``pipeline``."""
        body = {"name": name, "description": description, "pipeline_id": pipeline.id}
        return cls(workspace, workspace.client.post("/endpoints", body))

    @classmethod
    def get(
        cls, workspace: Workspace, id: str | None = None, name: str | None = None
    ) -> PipelineEndpoint:
        ref = id or name
        if not ref:
            raise ValueError("PipelineEndpoint.get needs id= or name=")
        return cls(workspace, workspace.client.get(f"/endpoints/{quote(ref)}"))

    @classmethod
    def list(cls, workspace: Workspace) -> builtins.list[PipelineEndpoint]:
        return [cls(workspace, e) for e in workspace.client.get("/endpoints")]

    def add(self, pipeline: PublishedPipeline) -> str:
        """Append ``pipeline`` as the next version; return its version number."""
        return self._add(pipeline, set_default=False)

    def add_default(self, pipeline: PublishedPipeline) -> str:
        """Append ``pipeline`` as the next version and make it the default."""
        return self._add(pipeline, set_default=True)

    def _add(self, pipeline: PublishedPipeline, *, set_default: bool) -> str:
        body = {"pipeline_id": pipeline.id, "set_default": set_default}
        self._info = self.workspace.client.post(f"{self._path}/versions", body)
        return str(self._info["added_version"])

    def set_default_version(self, version: str | int) -> None:
        self._info = self.workspace.client.put_json(
            f"{self._path}/default", {"version": str(version)}
        )

    def list_versions(self) -> builtins.list[dict[str, Any]]:
        """``[{"version", "pipeline_id", ...}]``, oldest first."""
        return list(self._info["versions"])

    def list_pipelines(self, active_only: bool = True) -> builtins.list[PublishedPipeline]:
        """The published pipelines behind the versions, oldest first."""
        out = []
        for v in self._info["versions"]:
            if active_only and v["pipeline_status"] != "Active":
                continue
            out.append(PublishedPipeline.get(self.workspace, v["pipeline_id"]))
        return out

    def get_pipeline(self, version: str | int | None = None) -> PublishedPipeline:
        wanted = self.default_version if version is None else str(version)
        for v in self._info["versions"]:
            if v["version"] == wanted:
                return PublishedPipeline.get(self.workspace, v["pipeline_id"])
        raise ValueError(f"endpoint {self.name!r} has no version {wanted!r}")

    def disable(self) -> None:
        self._info = self.workspace.client.post(f"{self._path}/disable", {})

    def enable(self) -> None:
        self._info = self.workspace.client.post(f"{self._path}/enable", {})

    def submit(
        self,
        experiment_name: str,
        pipeline_parameters: dict[str, ParameterValue] | None = None,
        pipeline_version: str | int | None = None,
    ) -> PipelineRun:
        """Run the default version, or ``pipeline_version``."""
        from headrace.experiment import Experiment, PipelineRun

        body: dict[str, Any] = {
            "ExperimentName": experiment_name,
            "ParameterAssignments": dict(pipeline_parameters or {}),
        }
        if pipeline_version is not None:
            body["PipelineVersion"] = str(pipeline_version)
        created = self.workspace.client.post(f"{self._path}/runs", body)
        return PipelineRun(Experiment(self.workspace, experiment_name), created["run_id"])

    def __repr__(self) -> str:
        return (
            f"PipelineEndpoint(name={self.name!r}, default_version={self.default_version!r}, "
            f"versions={len(self._info['versions'])})"
        )
