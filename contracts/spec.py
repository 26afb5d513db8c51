"""The pipeline specification: what the SDK submits and the scheduler runs.

It is the serialised form of the seed's object model (``PythonScriptStep``, ``DataReference``,
``PipelineData``, ``PipelineParameter``): plain data, so that a pipeline can be submitted from
any language and stored with its run. ``validate_pipeline`` holds the structural rules shared
by the API (which rejects a bad pipeline at submit, leaving no run behind) and the scheduler
(which must not trust events from other systems).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.environment import EnvironmentDefinition

__all__ = [
    "DEFAULT_COMPUTE_TARGET",
    "DEFAULT_DATASTORE",
    "DEFAULT_ENVIRONMENT",
    "Argument",
    "DatasetInput",
    "DatasetPath",
    "DatastoreInput",
    "InputArg",
    "LiteralArg",
    "OutputArg",
    "ParameterArg",
    "ParameterSpec",
    "ParameterValue",
    "PipelineDataInput",
    "PipelineSpec",
    "PipelineSpecError",
    "StepInput",
    "StepOutput",
    "StepSpec",
    "resolve_parameters",
    "step_dependencies",
    "validate_pipeline",
]

DEFAULT_DATASTORE = "workspaceblobstore"
DEFAULT_COMPUTE_TARGET = "local"
#: the runner's own interpreter, with the headrace step runtime importable
DEFAULT_ENVIRONMENT = "default"

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)

ParameterValue = str | int | float | bool

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatastoreInput(_Frozen):
    """A ``DataReference``: a path on a registered datastore, mounted or downloaded."""

    kind: Literal["datastore"] = "datastore"
    name: Name
    datastore: str
    path_on_datastore: str = ""
    mode: Literal["mount", "download"] = "mount"


class PipelineDataInput(_Frozen):
    """A ``PipelineData`` consumed by a step: the committed output of the step producing it."""

    kind: Literal["pipeline_data"] = "pipeline_data"
    name: Name
    mode: Literal["mount", "download"] = "mount"


class DatasetPath(_Frozen):
    datastore: str
    path: str


class DatasetInput(_Frozen):
    """A dataset consumed by a step (``dataset.as_named_input(name)``).

    Each path is bound into the step's scratch like a ``DataReference`` (one path: at the
    input's own location; several: under it, as ``0``, ``1``, ...). Inside the step,
    ``Run.get_context().input_datasets[name]`` reads them; a registered dataset names its
    version, which the run records as lineage.
    """

    kind: Literal["dataset"] = "dataset"
    name: Name
    dataset_kind: Literal["tabular", "file"]
    #: "direct": the step gets the dataset object (its files are downloaded for it)
    mode: Literal["direct", "mount", "download"] = "direct"
    paths: list[DatasetPath] = Field(min_length=1)
    #: delimited-file options of a tabular dataset (separator, header)
    options: dict[str, str | bool | int] = Field(default_factory=dict)
    dataset_name: str | None = None
    dataset_version: int | None = None

    def bindings(self) -> list[tuple[str, DatasetPath]]:
        """(scratch name, path) of each path: the input's name, or ``name/i`` for several."""
        if len(self.paths) == 1:
            return [(self.name, self.paths[0])]
        return [(f"{self.name}/{i}", p) for i, p in enumerate(self.paths)]


StepInput = Annotated[
    DatastoreInput | PipelineDataInput | DatasetInput, Field(discriminator="kind")
]


class StepOutput(_Frozen):
    """A ``PipelineData`` produced by a step; committed to ``datastore`` after the step ran."""

    name: Name
    datastore: str = DEFAULT_DATASTORE
    #: a fixed destination (a ``DataReference`` written by a ``DataTransferStep``) instead of
    #: the per-run location headrace picks
    path_on_datastore: str | None = None


class LiteralArg(_Frozen):
    """A plain command-line argument."""

    kind: Literal["literal"] = "literal"
    value: str


class InputArg(_Frozen):
    """Replaced by the local path of the named input when the step starts."""

    kind: Literal["input"] = "input"
    name: str


class OutputArg(_Frozen):
    """Replaced by the local directory the step must write the named output into."""

    kind: Literal["output"] = "output"
    name: str


class ParameterArg(_Frozen):
    """Replaced by the run's value of the named ``PipelineParameter``."""

    kind: Literal["parameter"] = "parameter"
    name: str


Argument = Annotated[LiteralArg | InputArg | OutputArg | ParameterArg, Field(discriminator="kind")]


class ParameterSpec(_Frozen):
    """A ``PipelineParameter``: a name and a default whose type the values must match."""

    name: Name
    default: ParameterValue


#: the most processes one step may start (``MpiConfiguration(process_count_per_node=)``)
MAX_PROCESS_COUNT = 64


class StepSpec(_Frozen):
    """A step: a script (or a command) in a snapshot, its arguments, inputs and outputs."""

    name: Name
    #: "python": a script run by a runner; "command": a ``CommandStep``, any command run by a
    #: runner from the snapshot; "transfer": a ``DataTransferStep``, a copy of its one input
    #: to its one output done by the data services (no script, no snapshot)
    step_kind: Literal["python", "command", "transfer"] = "python"
    script_name: str = ""
    snapshot: str = Field(
        default="", description="digest of the source directory's snapshot manifest"
    )
    arguments: list[Argument] = Field(default_factory=list)
    inputs: list[StepInput] = Field(default_factory=list)
    outputs: list[StepOutput] = Field(default_factory=list)
    compute_target: str = DEFAULT_COMPUTE_TARGET
    #: "default" (the runner's interpreter) or the ``key`` of one of the pipeline's
    #: ``environments``
    environment: str = DEFAULT_ENVIRONMENT
    allow_reuse: bool = True
    timeout_seconds: int | None = Field(default=None, gt=0)
    #: with ``hash_paths``: the digest of only those files, used by reuse instead of the
    #: whole snapshot's digest
    source_digest: str | None = None
    #: how many times a failure of the script itself (non-zero exit, timeout) is retried
    max_retries: int = Field(default=0, ge=0, le=20)
    #: steps this one starts after although no data flows between them (``run_after``)
    run_after: list[Name] = Field(default_factory=list)
    #: a command step's command line as items, joined with spaces when it starts (literal
    #: text as written; inputs, outputs and parameters substituted and quoted)
    command: list[Argument] = Field(default_factory=list)
    #: how many processes of the step its runner starts, each with its rank variables
    process_count: int = Field(default=1, ge=1, le=MAX_PROCESS_COUNT)

    @property
    def runs_on_runner(self) -> bool:
        """Whether a runner runs this step (a script or a command), not the data services."""
        return self.step_kind != "transfer"


class PipelineSpec(_Frozen):
    """A ``Pipeline``: its steps and parameters. Step order does not matter."""

    steps: list[StepSpec] = Field(min_length=1)
    parameters: list[ParameterSpec] = Field(default_factory=list)
    #: the environments the steps name (by ``key``), defined in full so the run is
    #: self-contained
    environments: list[EnvironmentDefinition] = Field(default_factory=list)
    description: str = ""
    #: let independent branches go on after a step failed (its downstream steps are skipped)
    continue_on_step_failure: bool = False


class PipelineSpecError(ValueError):
    """A pipeline that cannot run. ``problems`` names each step and what is wrong with it."""

    retriable = False

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid pipeline: " + "; ".join(self.problems))


def step_dependencies(spec: PipelineSpec) -> dict[str, set[str]]:
    """Map each step to the steps producing the ``PipelineData`` it consumes and the steps
    it runs after."""
    producer = {out.name: step.name for step in spec.steps for out in step.outputs}
    names = {step.name for step in spec.steps}
    return {
        step.name: {
            producer[inp.name]
            for inp in step.inputs
            if isinstance(inp, PipelineDataInput) and inp.name in producer
        }
        | {after for after in step.run_after if after in names}
        for step in spec.steps
    }


def _check_arguments(step: StepSpec, parameters: set[str]) -> Iterable[str]:
    inputs = {i.name for i in step.inputs}
    outputs = {o.name for o in step.outputs}
    for arg in [*step.arguments, *step.command]:
        if isinstance(arg, InputArg) and arg.name not in inputs:
            yield (
                f"step {step.name!r}: argument refers to input {arg.name!r}, which is not "
                f"among the step's inputs; add it to inputs=[...]"
            )
        elif isinstance(arg, OutputArg) and arg.name not in outputs:
            yield (
                f"step {step.name!r}: argument refers to output {arg.name!r}, which is not "
                f"among the step's outputs; add it to outputs=[...]"
            )
        elif isinstance(arg, ParameterArg) and arg.name not in parameters:
            yield (
                f"step {step.name!r}: argument refers to pipeline parameter {arg.name!r}, "
                f"which the pipeline does not declare"
            )


def _check_kind(step: StepSpec) -> Iterable[str]:
    if step.step_kind != "command" and step.command:
        yield (
            f"step {step.name!r}: only a command step has a command; use a CommandStep, or "
            "give the script's arguments as arguments"
        )
    if step.step_kind != "command" and step.process_count != 1:
        yield f"step {step.name!r}: only a command step starts several processes"
    if step.step_kind == "command":
        if not step.command or not step.snapshot:
            yield f"step {step.name!r}: a command step needs a command and a snapshot"
        if step.script_name or step.arguments:
            yield (
                f"step {step.name!r}: a command step takes its whole command line in command; "
                "it has no script_name or arguments"
            )
    if step.runs_on_runner:
        if step.step_kind == "python" and (not step.script_name or not step.snapshot):
            yield f"step {step.name!r}: a script step needs script_name and snapshot"
        for out in step.outputs:
            if out.path_on_datastore is not None:
                yield (
                    f"step {step.name!r}: output {out.name!r} has a fixed path; only a "
                    "DataTransferStep writes to a DataReference"
                )
        return
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        yield (
            f"step {step.name!r}: a DataTransferStep copies one source to one destination "
            f"(it has {len(step.inputs)} inputs and {len(step.outputs)} outputs)"
        )
    if any(isinstance(i, DatasetInput) for i in step.inputs):
        yield f"step {step.name!r}: a DataTransferStep's source is a DataReference or PipelineData"
    if step.arguments or step.script_name:
        yield f"step {step.name!r}: a DataTransferStep runs no script and takes no arguments"


def validate_pipeline(spec: PipelineSpec, *, compute_targets: Iterable[str] | None = None) -> None:
    """Raise ``PipelineSpecError`` listing every structural problem of ``spec``.

    Checked: unique step and parameter names, an output produced by one step only, every
    ``PipelineData`` input produced by some step, arguments that name declared inputs,
    outputs and parameters, ``run_after`` naming steps of the pipeline, no dependency cycle
    (data and ``run_after`` together), and (when given) known compute targets.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for step in spec.steps:
        if step.name in seen:
            problems.append(f"step {step.name!r}: two steps have this name; names must be unique")
        seen.add(step.name)

    param_names = [p.name for p in spec.parameters]
    for name in {n for n in param_names if param_names.count(n) > 1}:
        problems.append(f"pipeline parameter {name!r} is declared twice")

    producers: dict[str, str] = {}
    for step in spec.steps:
        for out in step.outputs:
            if out.name in producers:
                problems.append(
                    f"output {out.name!r} is produced by two steps, {producers[out.name]!r} "
                    f"and {step.name!r}; give each step its own PipelineData"
                )
            else:
                producers[out.name] = step.name
        names = [i.name for i in step.inputs] + [o.name for o in step.outputs]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"step {step.name!r}: input/output name {dup!r} is used twice")

    for step in spec.steps:
        for inp in step.inputs:
            if isinstance(inp, PipelineDataInput) and inp.name not in producers:
                problems.append(
                    f"step {step.name!r}: input {inp.name!r} is not produced by any step of "
                    f"the pipeline; add the step that outputs it, or use a DataReference"
                )
            if isinstance(inp, PipelineDataInput) and producers.get(inp.name) == step.name:
                problems.append(f"step {step.name!r}: consumes its own output {inp.name!r}")
        problems.extend(_check_arguments(step, set(param_names)))
        for after in step.run_after:
            if after not in seen:
                problems.append(
                    f"step {step.name!r}: runs after {after!r}, which is not a step of the "
                    "pipeline; add that step to the pipeline's steps"
                )

    for step in spec.steps:
        problems.extend(_check_kind(step))

    envs = {e.key: e for e in spec.environments}
    for step in spec.steps:
        if step.environment != DEFAULT_ENVIRONMENT and step.environment not in envs:
            problems.append(
                f"step {step.name!r}: environment {step.environment!r} is not among the "
                "pipeline's environments; add its definition to the pipeline's environments"
            )

    if compute_targets is not None:
        known = set(compute_targets)
        for step in spec.steps:
            if step.compute_target not in known:
                problems.append(
                    f"step {step.name!r}: unknown compute target {step.compute_target!r}; "
                    f"known targets: {', '.join(sorted(known)) or 'none'}"
                )

    try:
        TopologicalSorter(step_dependencies(spec)).prepare()
    except CycleError as exc:
        cycle = " -> ".join(repr(n) for n in exc.args[1])
        problems.append(f"the steps form a cycle: {cycle}; a step cannot depend on itself")

    if problems:
        raise PipelineSpecError(problems)


def resolve_parameters(
    spec: PipelineSpec, assigned: dict[str, ParameterValue]
) -> dict[str, ParameterValue]:
    """Defaults overridden by assignments; unknown names and wrong types are errors."""
    declared = {p.name: p.default for p in spec.parameters}
    problems = []
    for name, value in assigned.items():
        if name not in declared:
            problems.append(
                f"unknown pipeline parameter {name!r}; declared: {', '.join(declared) or 'none'}"
            )
            continue
        expected = type(declared[name])
        ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            problems.append(
                f"pipeline parameter {name!r} must be {expected.__name__} like its default "
                f"{declared[name]!r}, got {type(value).__name__} {value!r}"
            )
    if problems:
        raise PipelineSpecError(problems)
    return {**declared, **assigned}
