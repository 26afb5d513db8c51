"""The event envelope: CloudEvents 1.0 in Kafka binary content mode.

Attributes travel in ``ce_*`` headers, the JSON data is the message value and the key is the
event's partition key (the run id). The encoding is done by the ``cloudevents`` library; this
module adds the mapping between ``ce_type`` and our pydantic models, and the errors a consumer
needs to dead-letter a message with a precise reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from contracts.events import Event, event_class

__all__ = [
    "DecodedEvent",
    "EnvelopeError",
    "Message",
    "decode",
    "encode",
]

_FORMAT = JSONFormat()
#: The CloudEvents version written by ``encode`` and the only one ``decode`` accepts.
SPECVERSION = b"1.0"


@dataclass(frozen=True)
class Message:
    """A Kafka record as produced or consumed: key, value and headers."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class DecodedEvent:
    """A validated event with the envelope attributes consumers need (id for the inbox)."""

    id: str
    source: str
    event: Event


class EnvelopeError(ValueError):
    """A message that is not a valid headrace event; ``reason`` goes to the dead-letter topic."""

    retriable = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def encode(event: Event, *, source: str, event_id: str | None = None) -> Message:
    """Encode ``event`` as a CloudEvent in Kafka binary mode."""
    attributes: dict[str, object] = {
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event.type,
        "time": datetime.now(UTC),
        "specversion": SPECVERSION.decode(),
        "datacontenttype": "application/json",
        "partitionkey": event.key,
    }
    if event.subject is not None:
        attributes["subject"] = event.subject
    ce = CloudEvent(attributes=attributes, data=event.model_dump_json().encode())
    msg = ce_kafka.to_binary(ce, _FORMAT)
    key = msg.key.encode() if isinstance(msg.key, str) else msg.key
    return Message(key=key, value=msg.value, headers=list(msg.headers.items()))


def decode(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> DecodedEvent:
    """Validate a consumed record into its event model, or raise ``EnvelopeError``."""
    hdrs = {k.lower(): v for k, v in headers}
    ce_type = hdrs.get("ce_type")
    if ce_type is None or "ce_id" not in hdrs:
        raise EnvelopeError("not a CloudEvent: the ce_type and ce_id headers are required")
    type_ = ce_type.decode("utf-8", "replace")
    model = event_class(type_)
    if model is None:
        raise EnvelopeError(f"unknown event type {type_!r}")
    specversion = hdrs.get("ce_specversion")
    if specversion != SPECVERSION:
        # Why refuse rather than guess: another version may name or encode attributes
        # differently, and an event read under the wrong rules is worse than one dead-lettered.
        found = "missing" if specversion is None else repr(specversion.decode("utf-8", "replace"))
        raise EnvelopeError(
            f"{type_}: ce_specversion is {found}; headrace reads CloudEvents "
            f"{SPECVERSION.decode()} only: produce the record with ce_specversion=1.0"
        )
    if value is None:
        raise EnvelopeError(f"{type_}: empty message value")
    try:
        ce = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=dict(hdrs), key=key, value=value), _FORMAT
        )
    except Exception as exc:  # the library raises several types for broken attributes/JSON
        raise EnvelopeError(f"{type_}: cannot decode envelope: {exc}") from exc
    data = ce.get_data()
    if not isinstance(data, dict):
        raise EnvelopeError(f"{type_}: the message value is not a JSON object")
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        raise EnvelopeError(
            f"{type_}: data does not match the schema: {exc.errors(include_url=False)}"
        ) from exc
    return DecodedEvent(id=str(ce.get_id()), source=str(ce.get_source()), event=event)
