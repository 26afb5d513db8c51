"""Message authentication of internal events: an HMAC only the services can compute.

Why: the embedded broker (Tansu) has no SASL, and anyone who can reach a broker can produce to
it. Phase commands and results (``phase.results``, ``steps.*``, ``data.requests``, ...) are
internal: a forged ``ArtifactsUploaded`` must not complete a step. Every event a service
stages is signed with ``HMAC-SHA256(key, ce_id NUL ce_type NUL value)`` in the header
``x-headrace-signature``; consumers of internal topics dead-letter a record whose signature is
missing or wrong. ``runs.requested`` stays open to other systems by design (the public input);
protect it with the broker's own authentication (Kafka SASL and ACLs) in production.
With no key configured (``HEADRACE_EVENT_KEY`` unset: tests, a single trusted user) nothing is
signed or checked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from contracts.envelope import Message

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "x-headrace-signature"


def _mac(key: bytes, headers: dict[str, bytes], value: bytes) -> bytes:
    digest = hmac.new(key, digestmod=hashlib.sha256)
    digest.update(headers.get("ce_id", b""))
    digest.update(b"\0")
    digest.update(headers.get("ce_type", b""))
    digest.update(b"\0")
    digest.update(value)
    return digest.hexdigest().encode()


def sign(msg: Message, key: bytes) -> Message:
    """``msg`` with its signature header (replacing any it had)."""
    headers = [(k, v) for k, v in msg.headers if k != SIGNATURE_HEADER]
    mac = _mac(key, {k.lower(): v for k, v in headers}, msg.value)
    return Message(key=msg.key, value=msg.value, headers=[*headers, (SIGNATURE_HEADER, mac)])


def verify(key: bytes, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether the record carries a valid signature under ``key``."""
    hdrs = {k.lower(): v for k, v in headers}
    given = hdrs.pop(SIGNATURE_HEADER, None)
    if given is None:
        return False
    return hmac.compare_digest(given, _mac(key, hdrs, value or b""))
