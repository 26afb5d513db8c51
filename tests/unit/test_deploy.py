"""The deployment files are valid and agree with the code's topic and group names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from contracts.topics import Topics
from services.runtime.bus import consumer_group

DEPLOY = Path(__file__).parents[2] / "deploy"
BIN = Path(sys.executable).parent


def test_compose_file_matches_the_compose_spec() -> None:
    """deploy/compose.yaml validates against the Compose specification (offline)."""
    r = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_manifests_are_strictly_valid() -> None:
    """Kubernetes resources validate strictly (a misspelled field fails)."""
    r = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(DEPLOY / "k8s" / "step-runner.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed for resource deployment/headrace-step-runner" in r.stdout


def test_keda_scales_runners_on_the_group_and_topic_the_code_uses() -> None:
    """The ScaledObject watches the runners' real consumer group and dispatch topic."""
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "step-runner.yaml").read_text()))
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    meta = scaled["spec"]["triggers"][0]["metadata"]
    assert meta["topic"] == Topics("headrace.").dispatch("local")
    # StepRunnerService's group f"runner-{target}", prefixed like the topics
    assert meta["consumerGroup"] == consumer_group("headrace.", "runner-local")
    assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
