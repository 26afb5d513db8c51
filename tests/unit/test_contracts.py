"""Contracts: schemas in sync, envelope round trips and rejections, topic routing."""

from __future__ import annotations

import pytest

from contracts import events as ev
from contracts.envelope import EnvelopeError, decode, encode
from contracts.generate import SCHEMA_DIR, render_schemas
from contracts.topics import Topics


def test_committed_schemas_match_models() -> None:
    """The JSON Schemas under contracts/schemas are exactly what the models generate."""
    wanted = render_schemas()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(wanted), "run `make schemas` and commit the result"
    for name, content in wanted.items():
        assert on_disk[name] == content, f"{name} drifted: run `make schemas`"


def test_envelope_round_trip_keeps_ids_key_and_headers() -> None:
    """An encoded event decodes to an equal model with its CloudEvents attributes in headers."""
    event = ev.StepFailed(run_id="run-1", step="train", attempt=2, reason="boom", exit_code=3)
    msg = encode(event, source="/test", event_id="id-1")
    headers = dict(msg.headers)
    assert msg.key == b"run-1"
    assert headers["ce_type"] == b"headrace.step.failed.v1"
    assert headers["ce_subject"] == b"train"
    assert headers["content-type"] == b"application/json"
    decoded = decode(msg.key, msg.value, msg.headers)
    assert decoded.id == "id-1"
    assert decoded.source == "/test"
    assert decoded.event == event


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "not a CloudEvent"),
        ([("ce_id", b"1"), ("ce_type", b"nope.v9")], b"{}", "unknown event type"),
        (
            [
                ("ce_id", b"1"),
                ("ce_type", b"headrace.snapshot.requested.v1"),
                ("ce_specversion", b"1.0"),
                ("ce_source", b"/x"),
                ("content-type", b"application/json"),
            ],
            b"{broken",
            "snapshot.requested",
        ),
        (
            [
                ("ce_id", b"1"),
                ("ce_type", b"headrace.snapshot.requested.v1"),
                ("ce_specversion", b"1.0"),
                ("ce_source", b"/x"),
                ("content-type", b"application/json"),
            ],
            b'{"run_id": "r"}',
            "does not match the schema",
        ),
    ],
)
def test_decode_rejects_with_reason(
    headers: list[tuple[str, bytes]], value: bytes, reason: str
) -> None:
    """Malformed, unknown or schema-violating records raise EnvelopeError naming the problem."""
    with pytest.raises(EnvelopeError) as info:
        decode(b"k", value, headers)
    assert reason in info.value.reason


def test_run_id_must_be_path_safe() -> None:
    """Run ids become directory names, so slashes and dots-only ids are rejected."""
    with pytest.raises(ValueError, match="run_id"):
        ev.RunStarted(run_id="../etc", experiment="e", steps=[])


def test_dispatch_is_keyed_by_step_and_routed_to_its_target() -> None:
    """Dispatches spread over partitions by step and go to their compute target's topic."""
    topics = Topics("p.")
    d = ev.StepDispatched(
        run_id="r",
        step="s",
        attempt=1,
        compute_target="gpu",
        script_name="a.py",
        snapshot="x",
        environment="default",
        arguments=[],
        inputs=[],
        outputs=[],
        timeout_seconds=5,
    )
    assert d.key == "r/s"
    assert topics.for_event(d) == "p.steps.gpu"
    assert topics.for_event(ev.RunCompleted(run_id="r", experiment="e")) == "p.events"
    assert topics.for_event(ev.SnapshotReady(run_id="r", digest="d", files=1, bytes=1)) == (
        "p.phase.results"
    )


@pytest.mark.parametrize("path", ["/etc/passwd", "../up.py", "a/../../b", "c:\\\\x"])
def test_manifest_rejects_paths_escaping_the_tree(path: str) -> None:
    """Absolute paths, '..' components and the like are refused, naming the path."""
    from contracts.snapshot import ManifestEntry

    with pytest.raises(ValueError, match="path"):
        ManifestEntry(path=path, digest="sha256:" + "0" * 64, size=1)


def _valid_headers(specversion: bytes | None) -> list[tuple[str, bytes]]:
    msg = encode(ev.RunCompleted(run_id="r", experiment="e"), source="/test")
    headers = [(k, v) for k, v in msg.headers if k != "ce_specversion"]
    return headers if specversion is None else [*headers, ("ce_specversion", specversion)]


@pytest.mark.parametrize("specversion", [None, b"0.3", b"2.0", b""])
def test_decode_requires_cloudevents_specversion_1_0(specversion: bytes | None) -> None:
    """A record whose ce_specversion is missing or not "1.0" is an envelope error (so it is
    dead-lettered with a reason) rather than an event decoded under rules it did not use."""
    msg = encode(ev.RunCompleted(run_id="r", experiment="e"), source="/test")
    with pytest.raises(EnvelopeError) as info:
        decode(msg.key, msg.value, _valid_headers(specversion))
    assert "ce_specversion" in info.value.reason
    assert "1.0" in info.value.reason


@pytest.mark.parametrize("path", ["a\x00b.py", "line\nbreak.py", "tab\tname", "del\x7f", "c1\x85"])
def test_manifest_rejects_control_characters_in_paths(path: str) -> None:
    """Control characters (NUL included) in a path are refused with a message naming them:
    object stores cannot parse such keys and PostgreSQL cannot store NUL."""
    from contracts.snapshot import ManifestEntry

    with pytest.raises(ValueError, match="control character"):
        ManifestEntry(path=path, digest="sha256:" + "0" * 64, size=1)
