"""``PythonScriptStep``: a script of a source directory run on a compute target."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from contracts.environment import EnvironmentDefinition
from contracts.spec import (
    DEFAULT_ENVIRONMENT,
    Argument,
    DatasetInput,
    DatasetPath,
    DatastoreInput,
    InputArg,
    LiteralArg,
    OutputArg,
    ParameterArg,
    PipelineDataInput,
    StepInput,
    StepOutput,
    StepSpec,
)
from headrace.core.compute.compute import ComputeTarget
from headrace.datarefs import DataReference, PipelineData
from headrace.dataset import DatasetConsumptionConfig, TabularDataset
from headrace.environment import Environment, RunConfiguration
from headrace.pipeline_model import PipelineParameter

__all__ = ["DataTransferStep", "PipelineStep", "PythonScriptStep", "spec_step_name"]

InputLike = DataReference | PipelineData | DatasetConsumptionConfig


def spec_step_name(name: str) -> str:
    """A valid spec step name close to ``name``: ``"Hello World"`` -> ``"Hello_World"``.

    Why: Azure ML accepts any display name (the seed names a step "Hello World"), while the
    spec's names are identifiers; ported code must not fail on a space.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip()) or "step"
    if not re.match(r"[A-Za-z0-9_]", cleaned):
        cleaned = "_" + cleaned
    return cleaned[:128]


class PipelineStep:
    """What every step has: a name, an explicit order (``run_after``) and the steps upstream.

    Why a base: a ``Pipeline`` built from its last step finds the rest by asking each step
    for its upstream steps, whatever kind of step it is."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._run_after: list[PipelineStep] = []

    def run_after(self, step: PipelineStep) -> None:
        """Start this step only after ``step`` completed, with no data between them."""
        if not isinstance(step, PipelineStep):
            raise TypeError(f"step {self.name!r}: run_after needs a step, got {step!r}")
        if step is self:
            raise ValueError(f"step {self.name!r} cannot run after itself")
        if step not in self._run_after:
            self._run_after.append(step)

    def _data_inputs(self) -> list[PipelineData]:
        """The ``PipelineData`` this step reads."""
        return []

    def upstream(self) -> list[PipelineStep]:
        """The steps producing the data this step reads, then those it runs after."""
        found: list[PipelineStep] = []
        for data in self._data_inputs():
            found += [p for p in data._binding.producers() if p is not self]
        found += self._run_after
        unique: list[PipelineStep] = []
        for step in found:
            if not any(step is u for u in unique):
                unique.append(step)
        return unique

    def _run_after_spec(self) -> list[str]:
        return [spec_step_name(s.name) for s in self._run_after]


class PythonScriptStep(PipelineStep):
    """Runs ``script_name`` from ``source_directory`` with ``arguments``.

    ``DataReference``/``PipelineData`` objects in ``arguments`` become local paths when the
    step runs; a ``PipelineParameter`` becomes its value. Objects used in arguments but not
    listed are wired as Azure ML wires them: a ``DataReference`` or dataset is an input; a
    ``PipelineData`` is an input when another step lists it in its ``outputs``, and otherwise
    an output of this step.
    """

    def __init__(
        self,
        script_name: str,
        name: str | None = None,
        arguments: list[Any] | None = None,
        compute_target: ComputeTarget | str | None = None,
        runconfig: Any = None,
        inputs: list[InputLike] | None = None,
        outputs: list[PipelineData] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        allow_reuse: bool = True,
        hash_paths: list[str] | None = None,
        timeout_seconds: int | None = None,
        max_retries: int = 0,
        target: ComputeTarget | str | None = None,
        environment: Environment | None = None,
    ) -> None:
        self.script_name = script_name
        self.name = name or script_name
        self.arguments = list(arguments or [])
        target = compute_target if compute_target is not None else target
        self.compute_target = (
            target.name if isinstance(target, ComputeTarget) else (target or "local")
        )
        self.runconfig = runconfig
        if environment is None and isinstance(runconfig, RunConfiguration):
            environment = runconfig.environment
        if environment is not None and (
            environment.python.user_managed_dependencies or environment.is_plain()
        ):
            environment = None  # "use the compute's Python", or nothing added: the default
        self.environment = environment
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.params = dict(params or {})
        self.source_path = Path(source_directory or os.getcwd()).resolve()
        self.allow_reuse = allow_reuse
        self.hash_paths = hash_paths
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        super().__init__(self.name)
        for out in self.outputs:
            if not isinstance(out, PipelineData):
                raise TypeError(f"step {self.name!r}: outputs must be PipelineData, got {out!r}")
            out._binding.declared_by.append(self)
        for data in self._argument_only_data():
            data._binding.argument_users.append(self)

    def pipeline_parameters(self) -> list[PipelineParameter]:
        return [a for a in self.arguments if isinstance(a, PipelineParameter)]

    def _argument_only_data(self) -> list[PipelineData]:
        """``PipelineData`` named in the arguments but in neither inputs nor outputs."""
        names = {i.name for i in self.inputs} | {o.name for o in self.outputs}
        found: list[PipelineData] = []
        for arg in self.arguments:
            if isinstance(arg, PipelineData) and arg.name not in names:
                found.append(arg)
                names.add(arg.name)
        return found

    def _all_outputs(self) -> list[PipelineData]:
        """Declared outputs, then argument-only ``PipelineData`` no other step declares."""
        return list(self.outputs) + [
            d for d in self._argument_only_data() if not d._binding.declared_by
        ]

    def _all_inputs(self) -> list[InputLike]:
        found = list(self.inputs)
        names = {i.name for i in found} | {o.name for o in self._all_outputs()}
        for arg in self.arguments:
            if isinstance(arg, InputLike) and arg.name not in names:
                found.append(arg)
                names.add(arg.name)
        return found

    def _data_inputs(self) -> list[PipelineData]:
        return [i for i in self._all_inputs() if isinstance(i, PipelineData)]

    def environment_definition(self) -> EnvironmentDefinition | None:
        """The step's environment in submitted form (reads a requirements file)."""
        if self.environment is None:
            return None
        return self.environment.definition(self.source_path)

    def to_spec(
        self,
        snapshot: str,
        source_digest: str | None = None,
        environment: EnvironmentDefinition | None = None,
    ) -> StepSpec:
        """This step in the submitted form (``source_digest``: of its ``hash_paths``;
        ``environment``: its environment's definition)."""
        all_outputs = self._all_outputs()
        outputs = {o.name for o in all_outputs}
        args: list[Argument] = []
        for a in self.arguments:
            if isinstance(a, PipelineParameter):
                args.append(ParameterArg(name=a.name))
            elif isinstance(a, PipelineData) and a.name in outputs:
                args.append(OutputArg(name=a.name))
            elif isinstance(a, InputLike):
                args.append(InputArg(name=a.name))
            elif isinstance(a, str | int | float):
                args.append(LiteralArg(value=str(a)))
            else:
                raise TypeError(f"step {self.name!r}: unsupported argument {a!r}")
        inputs: list[StepInput] = []
        for i in self._all_inputs():
            if isinstance(i, DatasetConsumptionConfig):
                inputs.append(dataset_input(i))
            elif isinstance(i, DataReference):
                inputs.append(
                    DatastoreInput(
                        name=i.name,
                        datastore=i.datastore.name,
                        path_on_datastore=i.path_on_datastore,
                        mode=i.mode,
                    )
                )
            else:
                inputs.append(PipelineDataInput(name=i.name, mode=i.mode))
        return StepSpec(
            name=spec_step_name(self.name),
            script_name=self.script_name,
            snapshot=snapshot,
            arguments=args,
            inputs=inputs,
            outputs=[StepOutput(name=o.name, datastore=o.datastore_name) for o in all_outputs],
            compute_target=self.compute_target,
            allow_reuse=self.allow_reuse,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            source_digest=source_digest,
            environment=environment.key if environment is not None else DEFAULT_ENVIRONMENT,
            run_after=self._run_after_spec(),
        )

    def __repr__(self) -> str:
        return f"PythonScriptStep(name={self.name!r}, script_name={self.script_name!r})"


def dataset_input(cfg: DatasetConsumptionConfig) -> DatasetInput:
    """A dataset input as submitted: its paths, options and (if registered) name and version."""
    ds = cfg.dataset
    definition = ds.definition
    return DatasetInput(
        name=cfg.name,
        dataset_kind="tabular" if isinstance(ds, TabularDataset) else "file",
        mode=cfg.mode,
        paths=[DatasetPath(datastore=p["datastore"], path=p["path"]) for p in definition["paths"]],
        options={k: v for k, v in definition["options"].items() if isinstance(v, str | bool | int)},
        dataset_name=ds.name,
        dataset_version=ds.version,
    )


class DataTransferStep(PipelineStep):
    """Copies a ``DataReference`` or ``PipelineData`` to another datastore, done by the data
    services rather than a runner. The destination is a directory: a ``PipelineData``
    (consumable by later steps) or a ``DataReference`` (a fixed path on its datastore)."""

    source_path = None
    hash_paths = None

    def __init__(
        self,
        name: str,
        source_data_reference: DataReference | PipelineData,
        destination_data_reference: DataReference | PipelineData,
        compute_target: Any = None,
        source_reference_type: str | None = None,
        destination_reference_type: str | None = None,
        allow_reuse: bool = True,
    ) -> None:
        if not isinstance(source_data_reference, DataReference | PipelineData):
            raise TypeError(f"step {name!r}: the source must be a DataReference or PipelineData")
        if not isinstance(destination_data_reference, DataReference | PipelineData):
            raise TypeError(
                f"step {name!r}: the destination must be a DataReference or PipelineData"
            )
        self.name = name
        self.source = source_data_reference
        self.destination = destination_data_reference
        self.allow_reuse = allow_reuse
        super().__init__(name)
        if isinstance(destination_data_reference, PipelineData):
            destination_data_reference._binding.declared_by.append(self)

    def _data_inputs(self) -> list[PipelineData]:
        return [self.source] if isinstance(self.source, PipelineData) else []

    @property
    def outputs(self) -> list[PipelineData]:
        return [self.destination] if isinstance(self.destination, PipelineData) else []

    def pipeline_parameters(self) -> list[PipelineParameter]:
        return []

    def environment_definition(self) -> EnvironmentDefinition | None:
        return None

    def to_spec(
        self,
        snapshot: str = "",
        source_digest: str | None = None,
        environment: EnvironmentDefinition | None = None,
    ) -> StepSpec:
        src = self.source
        source: StepInput = (
            DatastoreInput(
                name=src.name,
                datastore=src.datastore.name,
                path_on_datastore=src.path_on_datastore,
                mode="download",
            )
            if isinstance(src, DataReference)
            else PipelineDataInput(name=src.name, mode="download")
        )
        dst = self.destination
        output = (
            StepOutput(name=dst.name, datastore=dst.datastore_name)
            if isinstance(dst, PipelineData)
            else StepOutput(
                name=dst.name, datastore=dst.datastore.name, path_on_datastore=dst.path_on_datastore
            )
        )
        return StepSpec(
            name=spec_step_name(self.name),
            step_kind="transfer",
            inputs=[source],
            outputs=[output],
            allow_reuse=self.allow_reuse,
            run_after=self._run_after_spec(),
        )

    def __repr__(self) -> str:
        return f"DataTransferStep(name={self.name!r}, {self.source!r} -> {self.destination!r})"
