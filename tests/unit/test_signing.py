"""Internal events are signed with a key only the services hold; any change breaks it."""

from __future__ import annotations

from contracts import events as ev
from contracts.envelope import encode
from services.runtime.signing import SIGNATURE_HEADER, sign, verify

KEY = b"k" * 32


def test_a_signed_event_verifies_and_a_changed_one_does_not() -> None:
    """The signature covers the id, the type and the data: changing any of them, or the key,
    fails verification."""
    msg = sign(encode(ev.RunCancelRequested(run_id="r1"), source="/t"), KEY)
    assert verify(KEY, msg.value, msg.headers)
    assert not verify(b"x" * 32, msg.value, msg.headers)
    assert not verify(KEY, msg.value.replace(b"r1", b"r2"), msg.headers)
    retyped = [(k, b"headrace.run.requested.v1" if k == "ce_type" else v) for k, v in msg.headers]
    assert not verify(KEY, msg.value, retyped)
    reid = [(k, b"other-id" if k == "ce_id" else v) for k, v in msg.headers]
    assert not verify(KEY, msg.value, reid)


def test_an_unsigned_event_does_not_verify() -> None:
    """No signature header is not a valid signature."""
    msg = encode(ev.RunCancelRequested(run_id="r1"), source="/t")
    assert SIGNATURE_HEADER not in dict(msg.headers)
    assert not verify(KEY, msg.value, msg.headers)
