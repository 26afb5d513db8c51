"""Pipelines through every service against the real broker and database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from contracts.envelope import decode
from contracts.topics import Topics
from tests.helpers import eventually
from tests.integration.conftest import Stack
from tests.integration.kafka_tools import produce_raw, read_all

WRITE = """
import sys, pathlib
from headrace import Run
out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
(out / "value.txt").write_text(sys.argv[1])
Run.get_context().log("written", len(sys.argv[1]))
print("wrote", sys.argv[1])
"""

APPEND = """
import sys, pathlib
src, dst, suffix = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
dst.mkdir(parents=True, exist_ok=True)
(dst / "value.txt").write_text((src / "value.txt").read_text() + suffix)
"""

FAIL = """
import sys
print("about to fail", file=sys.stderr)
sys.exit(4)
"""


def lit(v: str) -> dict[str, str]:
    return {"kind": "literal", "value": v}


def chain(snapshot: str, n: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {
            "name": "s0",
            "script_name": "write.py",
            "snapshot": snapshot,
            "arguments": [lit("x"), {"kind": "output", "name": "d0"}],
            "outputs": [{"name": "d0"}],
        }
    ]
    for i in range(1, n):
        steps.append(
            {
                "name": f"s{i}",
                "script_name": "append.py",
                "snapshot": snapshot,
                "arguments": [
                    {"kind": "input", "name": f"d{i - 1}"},
                    {"kind": "output", "name": f"d{i}"},
                    lit(str(i)),
                ],
                "inputs": [{"kind": "pipeline_data", "name": f"d{i - 1}"}],
                "outputs": [{"name": f"d{i}"}],
            }
        )
    return {"steps": steps}


async def test_chain_completes_and_passes_data_along(stack: Stack) -> None:
    """A 4-step chain completes; each step reads its upstream output and logs are kept."""
    snap = await stack.upload_snapshot({"write.py": WRITE, "append.py": APPEND})
    r = await stack.submit(chain(snap, 4))
    assert r.status_code == 201, r.text
    run = await stack.wait_run(r.json()["run_id"])
    assert run["status"] == "Completed", run
    assert [s["status"] for s in run["steps"]] == ["Completed"] * 4
    rid = run["run_id"]
    out = (await stack.client.get(f"/api/v1/runs/{rid}/steps/s3/outputs/d3")).json()
    assert out["files"] == [{"path": "value.txt", "size": 4}]
    data = await stack.client.get(f"/api/v1/runs/{rid}/steps/s3/outputs/d3/files/value.txt")
    assert data.content == b"x123"
    stdout = await stack.client.get(f"/api/v1/runs/{rid}/steps/s0/logs/stdout")
    assert stdout.text.strip() == "wrote x"
    metrics = (await stack.client.get(f"/api/v1/runs/{rid}/steps/s0/metrics")).json()
    assert [(m["name"], m["value"]) for m in metrics] == [("written", 1)]


async def test_public_events_tell_the_run_in_order(stack: Stack) -> None:
    """The public topic carries RunStarted, each step's Started/Completed, then RunCompleted."""
    snap = await stack.upload_snapshot({"write.py": WRITE, "append.py": APPEND})
    rid = (await stack.submit(chain(snap, 2))).json()["run_id"]
    assert (await stack.wait_run(rid))["status"] == "Completed"
    topic = Topics(stack.settings.topic_prefix).public

    async def types() -> list[str]:
        records = await read_all(stack.settings.kafka_bootstrap, topic)
        return [
            decode(k, v, list(h.items())).event.type for k, v, h in records if k == rid.encode()
        ]

    await eventually(lambda: _ends_with_run_completed(types))
    assert await types() == [
        "headrace.run.started.v1",
        "headrace.step.started.v1",
        "headrace.step.completed.v1",
        "headrace.step.started.v1",
        "headrace.step.completed.v1",
        "headrace.run.completed.v1",
    ]


async def _ends_with_run_completed(types: Any) -> bool:
    got = await types()
    return bool(got) and got[-1] == "headrace.run.completed.v1"


async def test_failing_step_fails_run_keeps_stderr_and_skips_downstream(stack: Stack) -> None:
    """A non-zero exit fails the step and the run; stderr stays readable; downstream never runs."""
    snap = await stack.upload_snapshot({"write.py": FAIL, "append.py": APPEND})
    rid = (await stack.submit(chain(snap, 3))).json()["run_id"]
    run = await stack.wait_run(rid)
    assert run["status"] == "Failed"
    assert "exit code 4" in run["error"]
    assert "s0" in run["error"]
    assert [s["status"] for s in run["steps"]] == ["Failed", "Skipped", "Skipped"]
    assert run["steps"][0]["exit_code"] == 4
    stderr = await stack.client.get(f"/api/v1/runs/{rid}/steps/s0/logs/stderr")
    assert stderr.text.strip() == "about to fail"


async def test_datastore_input_mount_and_download(stack: Stack) -> None:
    """A DataReference is linked in mount mode and copied in download mode; both read the data."""
    r = await stack.client.put(
        "/api/v1/datastores/workspaceblobstore/objects/data/in.txt", content=b"hello"
    )
    assert r.status_code == 201
    reader = (
        "import sys, pathlib, os\np = pathlib.Path(sys.argv[1])\n"
        "print(p.read_text(), 'link' if os.path.islink(p) else 'copy')\n"
    )
    snap = await stack.upload_snapshot({"read.py": reader})
    steps = [
        {
            "name": f"read_{mode}",
            "script_name": "read.py",
            "snapshot": snap,
            "arguments": [{"kind": "input", "name": "raw"}],
            "inputs": [
                {
                    "kind": "datastore",
                    "name": "raw",
                    "datastore": "workspaceblobstore",
                    "path_on_datastore": "data/in.txt",
                    "mode": mode,
                }
            ],
        }
        for mode in ("mount", "download")
    ]
    rid = (await stack.submit({"steps": steps})).json()["run_id"]
    assert (await stack.wait_run(rid))["status"] == "Completed"
    for mode, method in (("mount", "link"), ("download", "copy")):
        out = await stack.client.get(f"/api/v1/runs/{rid}/steps/read_{mode}/logs/stdout")
        assert out.text.strip() == f"hello {method}"


async def test_missing_datastore_path_fails_only_that_step(stack: Stack) -> None:
    """A DataReference to nothing fails its step with the datastore and path named."""
    snap = await stack.upload_snapshot({"read.py": "print('never')"})
    steps = [
        {
            "name": "read",
            "script_name": "read.py",
            "snapshot": snap,
            "inputs": [
                {
                    "kind": "datastore",
                    "name": "raw",
                    "datastore": "workspaceblobstore",
                    "path_on_datastore": "nowhere/x.csv",
                }
            ],
        }
    ]
    run = await stack.wait_run((await stack.submit({"steps": steps})).json()["run_id"])
    assert run["status"] == "Failed"
    assert "nowhere/x.csv" in run["steps"][0]["error"]
    assert "workspaceblobstore" in run["steps"][0]["error"]


async def test_bad_pipelines_rejected_at_submit_leave_no_run(stack: Stack) -> None:
    """Cycle, double producer, missing input, missing script, unknown target: 422, no run row."""
    snap = await stack.upload_snapshot({"a.py": "", "b.py": ""})

    def st(name: str, ins: list[str], outs: list[str], **kw: Any) -> dict[str, Any]:
        return {
            "name": name,
            "script_name": kw.pop("script", "a.py"),
            "snapshot": snap,
            "inputs": [{"kind": "pipeline_data", "name": i} for i in ins],
            "outputs": [{"name": o} for o in outs],
            **kw,
        }

    cases = {
        "cycle": [st("a", ["y"], ["x"]), st("b", ["x"], ["y"])],
        "produced by two steps": [st("a", [], ["x"]), st("b", [], ["x"])],
        "not produced by any step": [st("a", ["ghost"], [])],
        "not in its source directory": [st("a", [], [], script="missing.py")],
        "unknown compute target": [st("a", [], [], compute_target="gpu-cluster")],
    }
    for expected, steps in cases.items():
        r = await stack.submit({"steps": steps})
        assert r.status_code == 422, (expected, r.text)
        problems = r.json()["detail"]["problems"]
        assert any(expected in p and "'a'" in p for p in problems), (expected, problems)
    r = await stack.client.post(
        "/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM runs") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()


async def test_malformed_events_are_dead_lettered_and_consumer_goes_on(stack: Stack) -> None:
    """Garbage on the run-request topic (a wrong CloudEvents version included) goes to the
    dead-letter topic; later runs still work."""
    topics = Topics(stack.settings.topic_prefix)
    boot = stack.settings.kafka_bootstrap
    await produce_raw(boot, topics.run_requests, b"\x00garbage", [])
    await produce_raw(
        boot,
        topics.run_requests,
        b"{}",
        [("ce_id", b"1"), ("ce_type", b"headrace.run.requested.v7")],
    )
    await produce_raw(
        boot,
        topics.results,
        b'{"run_id": "x"}',
        [
            ("ce_id", b"2"),
            ("ce_type", b"headrace.snapshot.ready.v1"),
            ("ce_specversion", b"1.0"),
            ("ce_source", b"/t"),
            ("content-type", b"application/json"),
        ],
    )

    # Valid data, but a CloudEvents version headrace does not read.
    await produce_raw(
        boot,
        topics.results,
        b'{"run_id": "x", "digest": "d", "files": 1, "bytes": 1}',
        [
            ("ce_id", b"3"),
            ("ce_type", b"headrace.snapshot.ready.v1"),
            ("ce_specversion", b"0.3"),
            ("ce_source", b"/t"),
            ("content-type", b"application/json"),
        ],
    )

    async def dead() -> list[dict[str, bytes]]:
        return [h for _, _, h in await read_all(boot, topics.deadletter)]

    await eventually(lambda: _count_at_least(dead, 4))
    reasons = sorted(h["x-headrace-dlq-reason"].decode() for h in await dead())
    assert any("not a CloudEvent" in r for r in reasons)
    assert any("unknown event type 'headrace.run.requested.v7'" in r for r in reasons)
    assert any("does not match the schema" in r for r in reasons)
    assert any("ce_specversion is '0.3'" in r for r in reasons)
    snap = await stack.upload_snapshot({"write.py": WRITE, "append.py": APPEND})
    rid = (await stack.submit(chain(snap, 1))).json()["run_id"]
    assert (await stack.wait_run(rid))["status"] == "Completed"


async def _count_at_least(fn: Any, n: int) -> bool:
    return len(await fn()) >= n


async def test_blob_not_matching_its_digest_is_rejected_and_not_stored(stack: Stack) -> None:
    """An upload whose bytes hash to another digest is refused; nothing is stored."""
    digest = "sha256:" + "1" * 64
    r = await stack.client.put(f"/api/v1/blobs/{digest}", content=b"not that")
    assert r.status_code == 400
    assert "hash to" in r.json()["detail"]
    missing = await stack.client.post("/api/v1/blobs/missing", json={"digests": [digest]})
    assert missing.json()["missing"] == [digest]


async def test_manifest_delta_must_hash_to_the_announced_digest(stack: Stack) -> None:
    """A snapshot delta whose result differs from the client's digest is refused (422)."""
    base = await stack.upload_snapshot({"a.py": "x"})
    body = {
        "base": base,
        "digest": "sha256:" + "2" * 64,
        "changes": [{"path": "b.py", "entry": None}],
    }
    r = await stack.client.post("/api/v1/snapshots", json=body)
    assert r.status_code == 422
    assert "upload the full manifest" in r.json()["detail"]["problems"][0]
    body["changes"] = [{"path": "../x", "entry": None}]
    unknown = {**body, "base": "sha256:" + "3" * 64}
    assert (await stack.client.post("/api/v1/snapshots", json=unknown)).status_code == 404


async def test_run_started_and_observed_purely_through_kafka(stack: Stack) -> None:
    """An external system using only aiokafka starts a run by event and sees it complete."""
    from examples.external_client.run_via_kafka import script_target, start_and_follow

    snap = await stack.upload_snapshot({"hello.py": "print('hello from kafka')"})
    seen = await asyncio.wait_for(
        start_and_follow(
            stack.settings.kafka_bootstrap,
            script_target(snap, "hello.py"),
            prefix=stack.settings.topic_prefix,
        ),
        timeout=60,
    )
    assert [t for t, _ in seen] == [
        "headrace.run.started.v1",
        "headrace.step.started.v1",
        "headrace.step.completed.v1",
        "headrace.run.completed.v1",
    ]
