"""The kcat example: the request it produces is a valid RunRequested, and it follows the run.

kcat itself (librdkafka) cannot talk to the embedded broker, so a stand-in records what the
script produces; the recorded message is decoded with the real envelope code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts import events as ev
from contracts.envelope import decode

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "external_client" / "kcat.sh"
STANDIN = Path(__file__).with_name("kcat_standin")


def run(
    tmp_path: Path, *args: str, events: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    record = tmp_path / "produced.json"
    env = {
        "PATH": f"{STANDIN}:/usr/bin:/bin",
        "KCAT_RECORD": str(record),
        "KCAT_EVENTS": events,
        "HEADRACE_TOPIC_PREFIX": "t1.",
    }
    done = subprocess.run(
        ["sh", str(SCRIPT), "127.0.0.1:9092", *args],
        env={**env, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done, json.loads(record.read_text()) if record.exists() else {}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("published", "p-123", '{"word": "hi", "n": 2}'), {"published_pipeline_id": "p-123"}),
        (("endpoint", "scorer@1"), {"pipeline_endpoint": "scorer", "pipeline_version": "1"}),
        (("endpoint", "scorer"), {"pipeline_endpoint": "scorer", "pipeline_version": None}),
    ],
)
def test_request_is_a_valid_run_requested(
    tmp_path: Path, args: tuple[str, ...], expected: dict[str, Any]
) -> None:
    """The script produces a RunRequested (published id or endpoint and version, parameters) and
    prints only this run's events, ending with its completion."""
    done, produced = run(tmp_path, *args, events="headrace.run.completed.v1")
    assert done.returncode == 0, done.stderr
    assert produced["topic"] == "t1.runs.requested"
    headers = [(h.split("=", 1)[0], h.split("=", 1)[1].encode()) for h in produced["headers"]]
    decoded = decode(produced["key"].encode(), produced["value"].encode(), headers)
    assert isinstance(decoded.event, ev.RunRequested)
    for field, value in expected.items():
        assert getattr(decoded.event, field) == value
    assert decoded.event.run_id == produced["key"]
    if len(args) == 3:
        assert decoded.event.parameters == {"word": "hi", "n": 2}
    assert done.stdout.splitlines()[-1].startswith("headrace.run.completed.v1")
    assert "other" not in done.stdout  # events of other runs are filtered out


def test_exit_status_follows_the_run(tmp_path: Path) -> None:
    """A failed run makes the script exit 1 after printing the step and run failures."""
    done, _ = run(
        tmp_path, "published", "p", events="headrace.step.failed.v1,headrace.run.failed.v1"
    )
    assert done.returncode == 1
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        "headrace.step.failed.v1",
        "headrace.run.failed.v1",
    ]


def test_rejects_references_that_would_break_the_json(tmp_path: Path) -> None:
    """A pipeline reference with a quote is refused (exit 2) and nothing is produced."""
    done, produced = run(tmp_path, "published", 'x", "pipeline": {}', events="")
    assert done.returncode == 2
    assert "bad pipeline reference" in done.stderr
    assert produced == {}
