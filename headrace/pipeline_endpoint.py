"""``PipelineEndpoint``: one stable URL in front of numbered versions of a published pipeline.

As in the seed: versions are "0", "1", ...; ``add`` appends one, ``add_default`` appends one
and makes it the default, ``set_default_version`` moves the default. Callers keep POSTing to
``endpoint`` whatever the versions behind it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from contracts.spec import ParameterValue
from headrace.client import parameter_assignments
from headrace.published import ActiveOrDisabled, PublishedPipeline

if TYPE_CHECKING:
    from headrace.experiment import PipelineRun
    from headrace.pipeline_model import Pipeline
    from headrace.workspace import Workspace

__all__ = ["PipelineEndpoint", "PipelineVersion"]


@dataclass(frozen=True)
class PipelineVersion:
    """One version of an endpoint, as ``list_versions()`` gives it (v1's ``PipelineIdVersion``):
    ``version``, ``pipeline_id``, and the published ``pipeline`` itself."""

    workspace: Workspace
    version: str
    pipeline_id: str
    pipeline_status: str

    @property
    def pipeline(self) -> PublishedPipeline:
        return PublishedPipeline.get(self.workspace, self.pipeline_id)


class PipelineEndpoint(ActiveOrDisabled):
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
        cls,
        workspace: Workspace,
        name: str,
        description: str,
        pipeline: PublishedPipeline | Pipeline,
    ) -> PipelineEndpoint:
        """A new endpoint whose version "0" (the default) is ``pipeline``; a ``Pipeline`` not
        yet published is published first, under the endpoint's name, as in v1."""
        published = cls._published(pipeline, name, description)
        body = {"name": name, "description": description, "pipeline_id": published.id}
        return cls(workspace, workspace.client.post("/endpoints", body))

    @staticmethod
    def _published(
        pipeline: PublishedPipeline | Pipeline, name: str, description: str = ""
    ) -> PublishedPipeline:
        if isinstance(pipeline, PublishedPipeline):
            return pipeline
        published: PublishedPipeline = pipeline.publish(name=name, description=description)
        return published

    @classmethod
    def get(
        cls, workspace: Workspace, id: str | None = None, name: str | None = None
    ) -> PipelineEndpoint:
        ref = id or name
        if not ref:
            raise ValueError("PipelineEndpoint.get needs id= or name=")
        return cls(workspace, workspace.client.get(f"/endpoints/{quote(ref)}"))

    @classmethod
    def list(
        cls, workspace: Workspace, active_only: bool = True, max_results: int = 100
    ) -> builtins.list[PipelineEndpoint]:
        """The workspace's endpoints (only the enabled ones with ``active_only``)."""
        found = [cls(workspace, e) for e in workspace.client.get("/endpoints")]
        if active_only:
            found = [e for e in found if e.status == "Active"]
        return found[:max_results]

    def get_default_version(self) -> str:
        """The version runs get when they name none."""
        return self.default_version

    def set_default(self, pipeline: PublishedPipeline | Pipeline) -> None:
        """Make ``pipeline`` the default: its version if the endpoint has it, else a new
        version (a ``Pipeline`` is published first)."""
        published = self._published(pipeline, self.name)
        for v in self._info["versions"]:
            if v["pipeline_id"] == published.id:
                self.set_default_version(v["version"])
                return
        self.add_default(published)

    def set_name(self, name: str) -> None:
        """Rename the endpoint; its id, versions and ``endpoint`` URL stay as they are."""
        self._info = self.workspace.client.put_json(f"{self._path}/name", {"name": name})

    def add(self, pipeline: PublishedPipeline | Pipeline) -> str:
        """Append ``pipeline`` as the next version; return its version number."""
        return self._add(pipeline, set_default=False)

    def add_default(self, pipeline: PublishedPipeline | Pipeline) -> str:
        """Append ``pipeline`` as the next version and make it the default."""
        return self._add(pipeline, set_default=True)

    def _add(self, pipeline: PublishedPipeline | Pipeline, *, set_default: bool) -> str:
        published = self._published(pipeline, self.name)
        body = {"pipeline_id": published.id, "set_default": set_default}
        self._info = self.workspace.client.post(f"{self._path}/versions", body)
        return str(self._info["added_version"])

    def set_default_version(self, version: str | int) -> None:
        self._info = self.workspace.client.put_json(
            f"{self._path}/default", {"version": str(version)}
        )

    def list_versions(self) -> builtins.list[PipelineVersion]:
        """Every version with its pipeline, oldest first."""
        return [
            PipelineVersion(self.workspace, v["version"], v["pipeline_id"], v["pipeline_status"])
            for v in self._info["versions"]
        ]

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
            "ParameterAssignments": parameter_assignments(pipeline_parameters),
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
