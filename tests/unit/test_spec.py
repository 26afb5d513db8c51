"""Pipeline specification rules shared by the API and the scheduler."""

from __future__ import annotations

import pytest

from contracts.spec import (
    InputArg,
    LiteralArg,
    OutputArg,
    ParameterArg,
    ParameterSpec,
    PipelineDataInput,
    PipelineSpec,
    PipelineSpecError,
    StepOutput,
    StepSpec,
    resolve_parameters,
    step_dependencies,
    validate_pipeline,
)

SNAP = "sha256:" + "0" * 64


def step(
    name: str, ins: tuple[str, ...] = (), outs: tuple[str, ...] = (), **kw: object
) -> StepSpec:
    return StepSpec(
        name=name,
        script_name=f"{name}.py",
        snapshot=SNAP,
        inputs=[PipelineDataInput(name=i) for i in ins],
        outputs=[StepOutput(name=o) for o in outs],
        **kw,
    )


def problems_of(spec: PipelineSpec, **kw: object) -> list[str]:
    with pytest.raises(PipelineSpecError) as info:
        validate_pipeline(spec, **kw)  # type: ignore[arg-type]
    return info.value.problems


def test_valid_chain_passes_and_dependencies_follow_pipeline_data() -> None:
    """Producers of a consumed PipelineData become the consumer's upstream steps."""
    spec = PipelineSpec(
        steps=[
            step("b", ins=("x",), outs=("y",)),
            step("a", outs=("x",)),
            step("c", ins=("x", "y")),
        ]
    )
    validate_pipeline(spec, compute_targets=["local"])
    assert step_dependencies(spec) == {"a": set(), "b": {"a"}, "c": {"a", "b"}}


def test_cycle_is_named() -> None:
    """A cycle is reported with the steps forming it."""
    spec = PipelineSpec(
        steps=[step("a", ins=("y",), outs=("x",)), step("b", ins=("x",), outs=("y",))]
    )
    assert any("cycle" in p and "a" in p and "b" in p for p in problems_of(spec))


def test_output_produced_twice_names_both_steps() -> None:
    """Two producers of one PipelineData is an error naming both."""
    spec = PipelineSpec(steps=[step("a", outs=("x",)), step("b", outs=("x",))])
    assert any("'a'" in p and "'b'" in p and "'x'" in p for p in problems_of(spec))


def test_input_nobody_produces_names_step_and_input() -> None:
    """A consumed PipelineData without producer names the consuming step."""
    (problem,) = problems_of(PipelineSpec(steps=[step("a", ins=("ghost",))]))
    assert "'a'" in problem
    assert "'ghost'" in problem


def test_unknown_compute_target_lists_known_ones() -> None:
    """An unknown compute target is named together with the known targets."""
    spec = PipelineSpec(steps=[step("a", compute_target="gpu")])
    (problem,) = problems_of(spec, compute_targets=["local"])
    assert "'gpu'" in problem
    assert "local" in problem


def test_arguments_must_name_declared_inputs_outputs_parameters() -> None:
    """Arguments referring to undeclared inputs, outputs or parameters are rejected."""
    spec = PipelineSpec(
        steps=[
            step(
                "a",
                arguments=[
                    InputArg(name="i"),
                    OutputArg(name="o"),
                    ParameterArg(name="p"),
                    LiteralArg(value="ok"),
                ],
            )
        ]
    )
    assert len(problems_of(spec)) == 3


def test_duplicate_step_names_are_rejected() -> None:
    """Step names identify steps in the API and events, so they must be unique."""
    assert any("unique" in p for p in problems_of(PipelineSpec(steps=[step("a"), step("a")])))


def test_parameters_resolve_with_type_checks() -> None:
    """Assignments override defaults; unknown names and wrong types are errors."""
    spec = PipelineSpec(
        steps=[step("a")],
        parameters=[ParameterSpec(name="n", default=10), ParameterSpec(name="r", default=0.5)],
    )
    assert resolve_parameters(spec, {"n": 20, "r": 1}) == {"n": 20, "r": 1}
    with pytest.raises(PipelineSpecError) as info:
        resolve_parameters(spec, {"n": "20", "zz": 1, "r": True})
    assert len(info.value.problems) == 3


def test_run_after_names_a_step_of_the_pipeline_and_joins_the_cycle_check() -> None:
    """``run_after`` naming a missing step is refused by name; a run_after loop together
    with a data edge is a cycle; a valid run_after is a dependency."""
    missing = PipelineSpec(steps=[step("a", run_after=["ghost"])])
    assert problems_of(missing) == [
        "step 'a': runs after 'ghost', which is not a step of the pipeline; add that step to "
        "the pipeline's steps"
    ]
    loop = PipelineSpec(steps=[step("a", outs=("x",), run_after=["b"]), step("b", ins=("x",))])
    assert any("cycle" in p for p in problems_of(loop))
    fine = PipelineSpec(steps=[step("a"), step("b", run_after=["a"])])
    validate_pipeline(fine)
    assert step_dependencies(fine) == {"a": set(), "b": {"a"}}
