"""Generate JSON Schemas (Draft 2020-12) of every event and the pipeline spec, and the
AsyncAPI document of the public events.

``python -m contracts.generate`` (``make schemas``) writes ``contracts/schemas/``; a unit test
fails when the committed files drift from the models, so the public contract never changes
silently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts.asyncapi import render_asyncapi
from contracts.events import ALL_EVENTS
from contracts.snapshot import SnapshotManifest
from contracts.spec import PipelineSpec

__all__ = ["ASYNCAPI", "SCHEMA_DIR", "render_schemas"]

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI = Path(__file__).parent / "asyncapi.yaml"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _schema(model: type[BaseModel], title: str, extra: dict[str, Any]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema = {
        "$schema": _DIALECT,
        "$id": f"https://headrace.dev/schemas/{title}.json",
        **extra,
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> content for every schema."""
    out = {
        "pipeline-spec.json": _schema(PipelineSpec, "pipeline-spec", {}),
        "snapshot-manifest.json": _schema(SnapshotManifest, "snapshot-manifest", {}),
    }
    for event in ALL_EVENTS:
        out[f"{event.type}.json"] = _schema(
            event,
            event.type,
            {"x-cloudevents-type": event.type, "x-public": event.public},
        )
    return out


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    wanted = render_schemas()
    for stale in SCHEMA_DIR.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, content in wanted.items():
        (SCHEMA_DIR / name).write_text(content)
    ASYNCAPI.write_text(render_asyncapi())
    print(f"wrote {len(wanted)} schemas to {SCHEMA_DIR} and {ASYNCAPI.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
