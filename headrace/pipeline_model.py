"""``Pipeline`` and ``PipelineParameter``: a set of steps, turned into the submitted spec."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from contracts.spec import ParameterSpec, ParameterValue, PipelineSpec, validate_pipeline

if TYPE_CHECKING:
    from headrace.steps import DataTransferStep, PipelineStep, PythonScriptStep
    from headrace.workspace import Workspace

__all__ = ["Pipeline", "PipelineParameter"]


class PipelineParameter:
    """A value chosen at submit time (``pipeline_parameters={...}``), typed by its default."""

    def __init__(self, name: str, default_value: ParameterValue) -> None:
        from headrace.data.datapath import DataPath
        from headrace.errors import NotSupportedError

        if isinstance(default_value, DataPath):
            raise NotSupportedError(
                f"PipelineParameter {name!r} with a DataPath default (choosing an input's "
                "datastore path per run)",
                "use a DataReference input for the data, and a str PipelineParameter for "
                "anything the script should choose per run",
            )
        if not isinstance(default_value, str | int | float | bool):
            raise TypeError(
                f"PipelineParameter {name!r}: default_value must be str, int, float or bool"
            )
        self.name = name
        self.default_value = default_value

    def __repr__(self) -> str:
        return f"PipelineParameter({self.name!r}, default_value={self.default_value!r})"


def _flatten(steps: Iterable[Any]) -> Iterator[PythonScriptStep | DataTransferStep]:
    from headrace.steps import DataTransferStep, PythonScriptStep

    for s in steps:
        if isinstance(s, PythonScriptStep | DataTransferStep):
            yield s
        elif isinstance(s, list | tuple):
            yield from _flatten(s)
        else:
            raise TypeError(
                "a pipeline step must be a PythonScriptStep or DataTransferStep, got "
                f"{type(s).__name__}"
            )


def with_upstream(steps: list[Any]) -> list[Any]:
    """``steps`` and every step they need, transitively: producers of the ``PipelineData``
    they read and the steps they ``run_after``.

    Why: v1 code often builds ``Pipeline(steps=[last_step])`` and relies on the SDK to pull in
    the rest. The given steps keep their order; each step found this way is placed before
    the first step that needs it, so the run's step list reads upstream first."""
    given = {id(s) for s in steps}
    placed: dict[int, Any] = {}
    visiting: set[int] = set()

    def visit(step: PipelineStep) -> None:
        if id(step) in placed or id(step) in visiting:
            return  # a cycle is reported by validation, by name
        visiting.add(id(step))
        for up in step.upstream():
            if id(up) not in given:
                visit(up)
        visiting.discard(id(step))
        placed[id(step)] = step

    for step in steps:
        visit(step)
    return list(placed.values())


class Pipeline:
    """Steps to run together; order does not matter (``PipelineData`` and ``run_after``
    decide it). With ``resolve_closure`` (the default, as in v1) the steps upstream of those
    given are added, so ``Pipeline(ws, steps=[last_step])`` runs the whole chain."""

    def __init__(
        self,
        workspace: Workspace,
        steps: Iterable[Any],
        description: str = "",
        continue_on_step_failure: bool = False,
        resolve_closure: bool = True,
    ) -> None:
        self.workspace = workspace
        given = list(_flatten(steps))
        self.steps: list[PythonScriptStep | DataTransferStep] = (
            with_upstream(given) if resolve_closure else given
        )
        self.description = description
        self.continue_on_step_failure = continue_on_step_failure

    def parameters(self) -> list[PipelineParameter]:
        seen: dict[str, PipelineParameter] = {}
        for step in self.steps:
            for p in step.pipeline_parameters():
                seen.setdefault(p.name, p)
        return list(seen.values())

    def to_spec(
        self, snapshots: dict[str, str], source_digests: dict[int, str] | None = None
    ) -> PipelineSpec:
        """The submitted form; ``snapshots`` maps source directories to snapshot digests,
        ``source_digests`` step positions to the digests of their ``hash_paths``."""
        digests = source_digests or {}
        envs = [s.environment_definition() for s in self.steps]
        return PipelineSpec(
            steps=[
                s.to_spec(snapshots.get(str(s.source_path), ""), digests.get(i), envs[i])
                for i, s in enumerate(self.steps)
            ],
            environments=list({e.key: e for e in envs if e is not None}.values()),
            parameters=[
                ParameterSpec(name=p.name, default=p.default_value) for p in self.parameters()
            ],
            description=self.description,
            continue_on_step_failure=self.continue_on_step_failure,
        )

    def publish(
        self,
        name: str,
        description: str = "",
        version: str = "",
        continue_on_step_failure: bool | None = None,
    ) -> Any:
        """Snapshot and publish this pipeline behind its own REST endpoint;
        ``continue_on_step_failure``, when given, replaces the pipeline's own setting in
        what is published."""
        from headrace.published import PublishedPipeline

        return PublishedPipeline.create(
            self.workspace,
            name=name,
            description=description,
            version=version,
            pipeline=self,
            continue_on_step_failure=continue_on_step_failure,
        )

    def validate(self) -> list[str]:
        """Structural problems (cycles, unproduced inputs, ...); empty when fine."""
        from contracts.spec import PipelineSpecError

        dummy = {str(s.source_path): "sha256:" + "0" * 64 for s in self.steps}
        try:
            validate_pipeline(self.to_spec(dummy))
        except PipelineSpecError as exc:
            return exc.problems
        return []
