"""`headrace events tail` prints one readable line per event."""

from __future__ import annotations

from headrace.events_tail import format_event


def test_step_event_line_names_run_step_attempt_and_details() -> None:
    """A step event shows its short type, run, step#attempt and non-empty fields."""
    line = format_event(
        "headrace.step.failed.v1",
        {"run_id": "r1", "step": "train", "attempt": 2, "reason": "exit code 1", "exit_code": 1},
    )
    assert line.startswith("step.failed")
    assert "r1 train#2" in line
    assert "reason=exit code 1" in line


def test_run_event_line_omits_empty_fields() -> None:
    """Empty lists and None are left out."""
    line = format_event(
        "headrace.run.failed.v1",
        {"run_id": "r1", "experiment": "e", "reason": "x", "failed_steps": []},
    )
    assert "failed_steps" not in line
    assert "experiment=e" in line
