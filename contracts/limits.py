"""Size limits of what travels between headrace's parts, in one place.

Why these numbers: Apache Kafka's default ``message.max.bytes`` (and most managed clusters)
accept record batches of about 1 MiB. An event whose encoded value stays under
``MAX_EVENT_BYTES`` leaves room for its ``ce_*`` headers and the batch framing, so every event
headrace emits can be sent to a broker with default settings. The producer is configured with
``PRODUCER_MAX_REQUEST_BYTES``, which matches the broker default.

Checking at the edge is what keeps an oversize request from being stored at all: the outbox
refuses to stage an event larger than the limit (the API turns that into HTTP 413, with nothing
written), and the SDK checks before it sends.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEAD_LETTER_BYTES",
    "MAX_EVENT_BYTES",
    "PRODUCER_MAX_REQUEST_BYTES",
    "too_large_reason",
]

#: largest encoded event value (the CloudEvent's JSON data) headrace stages or sends
MAX_EVENT_BYTES = 900 * 1024
#: the producer's ``max_request_size``: a broker's default record-batch limit (1 MiB)
PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024
#: records larger than this are dead-lettered as a reference (topic, partition, offset)
MAX_DEAD_LETTER_BYTES = MAX_EVENT_BYTES


def too_large_reason(event_type: str, size: int) -> str:
    """What to tell a user whose event is too large, and what to do about it."""
    return (
        f"{event_type} would be {size:,} bytes, over headrace's limit of {MAX_EVENT_BYTES:,} "
        "bytes per event: pass large values as data (a DataReference, a dataset or a file in "
        "the datastore) instead of as arguments or parameters, or split the pipeline"
    )
