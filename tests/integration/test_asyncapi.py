"""The AsyncAPI document: generated from the models, and valid for the reference parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from contracts.asyncapi import render_asyncapi
from contracts.generate import ASYNCAPI
from tests.node_tools import npm_package

VALIDATOR = Path(__file__).resolve().parents[2] / "contracts" / "validate_asyncapi.mjs"


@pytest.fixture(scope="module")
def parser_modules() -> Path:
    return npm_package("node-asyncapi", "@asyncapi/parser@3.6.3", "@asyncapi/parser/package.json")


def validate(modules: Path, file: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is not installed: run `make test`"
    return subprocess.run(
        [node, str(VALIDATOR), str(file)],
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_committed_document_matches_the_models() -> None:
    """The committed AsyncAPI document is exactly what the models render now."""
    assert ASYNCAPI.read_text() == render_asyncapi(), "run `make schemas` and commit the result"


def test_document_is_valid_asyncapi_3(parser_modules: Path) -> None:
    """The reference parser accepts the document as AsyncAPI 3: 2 channels, 13 messages."""
    result = validate(parser_modules, ASYNCAPI)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID: 2 channels, 13 messages" in result.stdout


def test_run_request_documents_every_way_to_name_a_pipeline() -> None:
    """RunRequested documents pipeline, published id, endpoint and version; ce_* are required."""
    doc = yaml.safe_load(ASYNCAPI.read_text())
    props = doc["components"]["schemas"]["RunRequested"]["properties"]
    assert {"pipeline", "published_pipeline_id", "pipeline_endpoint", "pipeline_version"} <= set(
        props
    )
    headers = doc["components"]["schemas"]["CloudEventHeaders"]["required"]
    assert {"ce_id", "ce_type", "ce_source", "ce_specversion"} <= set(headers)


def test_validator_rejects_a_broken_document(parser_modules: Path, tmp_path: Path) -> None:
    """A dangling message $ref and an AsyncAPI 2 action make the validator say INVALID (exit 1)."""
    doc = yaml.safe_load(ASYNCAPI.read_text())
    doc["channels"]["events"]["messages"]["Bogus"] = {"$ref": "#/components/messages/Nope"}
    doc["operations"]["followRuns"]["action"] = "publish"  # AsyncAPI 2 wording, invalid in 3
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = validate(parser_modules, broken)
    assert result.returncode == 1
    assert "INVALID" in result.stdout
