"""The AsyncAPI 3 document of the public event contract, generated from the pydantic models.

``make schemas`` writes ``contracts/asyncapi.yaml``; a test fails when the committed file drifts
from the models and validates it with the reference parser (``@asyncapi/parser``), so the
document other teams read is always the one the services speak.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from contracts.events import ALL_EVENTS, Event

__all__ = ["render_asyncapi"]

_REF = "#/components/schemas/{model}"
_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode (one header each).",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique per event; consumers dedupe on it."},
        "ce_source": {"type": "string", "description": "Who emitted it, e.g. /services/api."},
        "ce_type": {
            "type": "string",
            "description": "The event type, e.g. headrace.run.requested.v1.",
        },
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The step a step event is about."},
        "ce_partitionkey": {"type": "string", "description": "The run id (also the key)."},
        "content-type": {"type": "string", "const": "application/json"},
    },
}
_KEY = {"type": "string", "description": "The run id: a run's events stay ordered."}


def _draft07(node: Any) -> Any:
    """Adapt pydantic's output to the AsyncAPI schema dialect (a JSON Schema draft-07
    superset): its ``discriminator`` is a property name, not an OpenAPI object."""
    if isinstance(node, dict):
        out = {k: _draft07(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_draft07(v) for v in node]
    return node


def _hoist(model: type[BaseModel], schemas: dict[str, Any]) -> str:
    """Put ``model``'s schema and its definitions in ``schemas``; return its name."""
    schema = copy.deepcopy(model.model_json_schema(mode="serialization", ref_template=_REF))
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = _draft07(sub)
    schemas[model.__name__] = _draft07(schema)
    return model.__name__


def _message(event: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    name = _hoist(event, schemas)
    doc = (event.__doc__ or "").strip()
    return {
        "name": event.type,
        "title": name,
        "summary": doc.splitlines()[0] if doc else name,
        "description": doc,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {"kafka": {"key": _KEY, "bindingVersion": "0.5.0"}},
        "x-cloudevents-type": event.type,
    }


def render_asyncapi() -> str:
    """The document, as YAML text (deterministic, for the drift check)."""
    schemas: dict[str, Any] = {"CloudEventHeaders": _HEADERS}
    inputs = [e for e in ALL_EVENTS if e.public and e.type.endswith("requested.v1")]
    outputs = [e for e in ALL_EVENTS if e.public and e not in inputs]
    messages = {e.__name__: _message(e, schemas) for e in (*inputs, *outputs)}

    def refs(events: list[type[Event]]) -> dict[str, Any]:
        return {e.__name__: {"$ref": f"#/components/messages/{e.__name__}"} for e in events}

    def channel_refs(channel: str, events: list[type[Event]]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{channel}/messages/{e.__name__}"} for e in events]

    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "headrace public events",
            "version": "1.0.0",
            "description": (
                "Start runs and follow them over Kafka. Every message is a CloudEvent in Kafka "
                "binary mode: attributes in ce_* headers, the JSON data as the value, the run "
                "id as the key. Topic names carry the installation's prefix (default "
                "'headrace.'). Messages that cannot be parsed or handled go to "
                "'{prefix}deadletter' with the reason in the x-headrace-dlq-reason header."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The embedded stack (`headrace status` shows its address).",
            }
        },
        "channels": {
            "runRequests": {
                "address": "headrace.runs.requested",
                "description": "Run requests and cancellations, from any system.",
                "messages": refs(inputs),
            },
            "events": {
                "address": "headrace.events",
                "description": "Run and step lifecycle events.",
                "messages": refs(outputs),
            },
        },
        "operations": {
            "requestRun": {
                "action": "send",
                "summary": "Start (or cancel) a run: a full pipeline, a published pipeline, "
                "or a pipeline endpoint and version, with parameter assignments.",
                "channel": {"$ref": "#/channels/runRequests"},
                "messages": channel_refs("runRequests", inputs),
            },
            "followRuns": {
                "action": "receive",
                "summary": "Subscribe to run and step events (filter by key for one run).",
                "channel": {"$ref": "#/channels/events"},
                "messages": channel_refs("events", outputs),
            },
        },
        "components": {"messages": messages, "schemas": schemas},
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)
