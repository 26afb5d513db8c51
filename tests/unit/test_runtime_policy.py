"""The runtime's error policy and log context: what is retried and what a log line carries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import structlog
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from structlog.testing import capture_logs

from contracts import events as ev
from contracts.envelope import Message, encode
from contracts.limits import MAX_DEAD_LETTER_BYTES
from contracts.topics import Topics
from services.runtime.bus import (
    Consumer,
    DeadLetterFailed,
    DeadLetters,
    Subscription,
    is_transient,
)
from services.runtime.errors import PermanentError, TransientError
from services.runtime.retry import fast_waits
from services.runtime.settings import RuntimeSettings
from services.runtime.storage import ObjectNotFound
from tests.harness import RecordingSender


def test_explicit_retriable_false_is_not_retried() -> None:
    """An ``OSError`` that says ``retriable = False`` (a missing object) is not retried."""
    assert not is_transient(ObjectNotFound("runs/x: no such object"))
    assert not is_transient(PermanentError("no"))


def test_explicit_retriable_true_and_plain_transients_are_retried() -> None:
    """A ``TransientError`` and an ``OSError`` without an opinion are retried."""
    assert is_transient(TransientError("later"))
    assert is_transient(ConnectionResetError("reset"))
    assert not is_transient(ValueError("bad"))


@dataclass
class _Record:
    """The fields of an aiokafka ``ConsumerRecord`` the consumer loop reads."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "t.runs.requested"
    partition: int = 0
    offset: int = 7


async def test_handler_log_lines_carry_the_event_type() -> None:
    """A line logged by a handler names the event type it handles (under ``event_type``:
    ``event`` is structlog's message key and would be overwritten)."""

    async def handler(event: ev.Event, decoded: object) -> None:
        structlog.get_logger("t").info("handler.did_something")

    sub = Subscription(group="g", topics=["t"], handlers={ev.RunCancelRequested: handler})
    consumer = Consumer(
        RuntimeSettings(), sub, DeadLetters(RecordingSender(), Topics("t."), "g"), client_id="c"
    )
    msg = encode(ev.RunCancelRequested(run_id="r1"), source="/test")
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await consumer._process(_Record(msg.key, msg.value, msg.headers))
    finally:
        await consumer.close()
    line = next(x for x in logs if x["event"] == "handler.did_something")
    assert line["event_type"] == ev.RunCancelRequested.type
    assert line["run_id"] == "r1"


async def test_dead_letter_of_a_huge_record_is_a_reference() -> None:
    """A record too large to send again whole is dead-lettered as a small reference that says
    where the original is and why."""
    sender = RecordingSender()
    dlq = DeadLetters(sender, Topics("t."), "g")
    await dlq.send(_Record(b"k", b"x" * (MAX_DEAD_LETTER_BYTES + 1)), "bad JSON")
    [(topic, msg)] = sender.sent
    assert topic == "t.deadletter"
    assert len(msg.value) < 1024
    assert json.loads(msg.value) == {
        "topic": "t.runs.requested",
        "partition": 0,
        "offset": 7,
        "size": MAX_DEAD_LETTER_BYTES + 2,
        "reason": "bad JSON",
    }
    assert dict(msg.headers)["x-headrace-dlq-reference"] == b"1"


async def test_dead_letter_refused_whole_falls_back_to_a_reference() -> None:
    """When the broker refuses the whole record (its limit is lower than ours), a reference
    is sent instead, and the reason says so."""

    class RefusesBig(RecordingSender):
        async def send_many(self, items: Sequence[tuple[str, Message]]) -> None:
            if any(len(m.value) > 400 for _, m in items):
                raise MessageSizeTooLargeError()
            await super().send_many(items)

    sender = RefusesBig()
    await DeadLetters(sender, Topics("t."), "g").send(_Record(b"k", b"y" * 500), "no schema")
    [(_, msg)] = sender.sent
    assert "the whole record was refused" in json.loads(msg.value)["reason"]


async def test_dead_letter_that_cannot_be_sent_escapes_the_loop() -> None:
    """A broker that stays away makes dead-lettering raise ``DeadLetterFailed`` after its
    bounded retries, so the consumer dies and its service is restarted, instead of the
    record being skipped without a trace."""
    sender = RecordingSender()
    sender.fail = KafkaConnectionError("broker away")
    dlq = DeadLetters(sender, Topics("t."), "g", retry_seconds=30)
    with fast_waits(), pytest.raises(DeadLetterFailed, match="broker away"):
        await dlq.send(_Record(b"k", b"v"), "bad")


def test_library_log_lines_share_the_services_json_format() -> None:
    """A standard-library logger (aiokafka's, say) writes the same JSON lines as the services,
    with its logger name and level, once logging is configured."""
    code = (
        "import logging\n"
        "from services.runtime.logging import configure_logging\n"
        "configure_logging('info', 'json')\n"
        "logging.getLogger('aiokafka.consumer').warning('group %s rebalanced', 'g1')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["event"] == "group g1 rebalanced"
    assert line["logger"] == "aiokafka.consumer"
    assert line["level"] == "warning"
    assert "timestamp" in line
