"""Step reuse on the real stack: what re-runs and what does not."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.integration.conftest import Stack

PRODUCE = """
import sys, pathlib
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "v").write_text(sys.argv[2] if len(sys.argv) > 2 else "p")
"""
CONSUME = """
import sys, pathlib
out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
(out / "v").write_text((pathlib.Path(sys.argv[1]) / "v").read_text() + "c")
"""


def pipeline(snap_a: str, snap_b: str, **extra: Any) -> dict[str, Any]:
    return {
        "parameters": [{"name": "word", "default": "p"}],
        "steps": [
            {
                "name": "a",
                "script_name": "produce.py",
                "snapshot": snap_a,
                "arguments": [
                    {"kind": "output", "name": "da"},
                    {"kind": "parameter", "name": "word"},
                ],
                "outputs": [{"name": "da"}],
                **extra,
            },
            {
                "name": "b",
                "script_name": "consume.py",
                "snapshot": snap_b,
                "arguments": [{"kind": "input", "name": "da"}, {"kind": "output", "name": "db"}],
                "inputs": [{"kind": "pipeline_data", "name": "da"}],
                "outputs": [{"name": "db"}],
            },
        ],
    }


async def ran(stack: Stack, rid: str) -> dict[str, bool]:
    """Which steps actually ran (had an attempt) in this run."""
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT s.name, count(a.*) > 0 AS ran FROM steps s LEFT JOIN step_attempts a"
            " ON a.run_id = s.run_id AND a.step = s.name WHERE s.run_id = $1 GROUP BY s.name",
            rid,
        )
        return {r["name"]: r["ran"] for r in rows}
    finally:
        await conn.close()


async def submit_ok(stack: Stack, spec: dict[str, Any], **kw: Any) -> str:
    r = await stack.submit(spec, **kw)
    assert r.status_code == 201, r.text
    run = await stack.wait_run(r.json()["run_id"])
    assert run["status"] == "Completed", run
    return str(run["run_id"])


async def test_identical_resubmit_reuses_every_step_and_names_the_source(stack: Stack) -> None:
    """The second identical run dispatches nothing; each step names the run it reused."""
    a = await stack.upload_snapshot({"produce.py": PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    first = await submit_ok(stack, pipeline(a, b))
    second = await submit_ok(stack, pipeline(a, b))
    assert await ran(stack, second) == {"a": False, "b": False}
    detail = (await stack.client.get(f"/api/v1/runs/{second}")).json()
    assert [s["reused_from"] for s in detail["steps"]] == [
        {"run_id": first, "step": "a"},
        {"run_id": first, "step": "b"},
    ]
    out = await stack.client.get(f"/api/v1/runs/{second}/steps/b/outputs/db/files/v")
    assert out.content == b"pc"


async def test_changes_rerun_exactly_the_affected_steps(stack: Stack) -> None:
    """A changed source file, parameter or upstream output re-runs that step and downstream."""
    a = await stack.upload_snapshot({"produce.py": PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    await submit_ok(stack, pipeline(a, b))
    b2 = await stack.upload_snapshot({"consume.py": CONSUME + "\n# changed\n"})
    assert await ran(stack, await submit_ok(stack, pipeline(a, b2))) == {"a": False, "b": True}
    rid = await submit_ok(stack, pipeline(a, b2), parameters={"word": "q"})
    assert await ran(stack, rid) == {"a": True, "b": True}
    rid = await submit_ok(stack, pipeline(a, b2), parameters={"word": "q"})
    assert await ran(stack, rid) == {"a": False, "b": False}


async def test_allow_reuse_false_and_regenerate_outputs_always_run(stack: Stack) -> None:
    """allow_reuse=False runs that step every time; regenerate_outputs runs every step."""
    a = await stack.upload_snapshot({"produce.py": PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    await submit_ok(stack, pipeline(a, b))
    rid = await submit_ok(stack, pipeline(a, b, allow_reuse=False))
    assert await ran(stack, rid) == {"a": True, "b": False}
    rid = await submit_ok(stack, pipeline(a, b), regenerate_outputs=True)
    assert await ran(stack, rid) == {"a": True, "b": True}


async def test_deleted_outputs_are_not_reused(stack: Stack) -> None:
    """A hit whose outputs were deleted from the datastore runs again."""
    a = await stack.upload_snapshot({"produce.py": PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    first = await submit_ok(stack, pipeline(a, b))
    out = (await stack.client.get(f"/api/v1/runs/{first}/steps/a/outputs/da")).json()
    root = stack.settings.home / "datastores" / "workspaceblobstore" / out["path"]
    for f in root.iterdir():
        f.unlink()
    assert await ran(stack, await submit_ok(stack, pipeline(a, b))) == {"a": True, "b": False}


async def test_changed_file_under_a_data_reference_reruns(stack: Stack) -> None:
    """A file changed behind a DataReference path invalidates the step reading it."""
    put = "/api/v1/datastores/workspaceblobstore/objects/in/data.txt?overwrite=true"
    assert (await stack.client.put(put, content=b"one")).status_code == 201
    snap = await stack.upload_snapshot({"read.py": "import sys; print(open(sys.argv[1]).read())"})
    spec = {
        "steps": [
            {
                "name": "read",
                "script_name": "read.py",
                "snapshot": snap,
                "arguments": [{"kind": "input", "name": "raw"}],
                "inputs": [
                    {
                        "kind": "datastore",
                        "name": "raw",
                        "datastore": "workspaceblobstore",
                        "path_on_datastore": "in/data.txt",
                    }
                ],
            }
        ]
    }
    await submit_ok(stack, spec)
    assert await ran(stack, await submit_ok(stack, spec)) == {"read": False}
    assert (await stack.client.put(put, content=b"two!")).status_code == 201
    assert await ran(stack, await submit_ok(stack, spec)) == {"read": True}


async def test_reuploading_identical_bytes_keeps_reuse(stack: Stack) -> None:
    """Notebooks upload their data with overwrite=True on every run: the same bytes again
    leave the object's identity alone, so the step reading it is reused; bytes of the same
    size but other content still rerun it."""
    put = "/api/v1/datastores/workspaceblobstore/objects/in/same.txt?overwrite=true"
    assert (await stack.client.put(put, content=b"one")).status_code == 201
    snap = await stack.upload_snapshot({"read.py": "import sys; print(open(sys.argv[1]).read())"})
    spec = {
        "steps": [
            {
                "name": "read",
                "script_name": "read.py",
                "snapshot": snap,
                "arguments": [{"kind": "input", "name": "raw"}],
                "inputs": [
                    {
                        "kind": "datastore",
                        "name": "raw",
                        "datastore": "workspaceblobstore",
                        "path_on_datastore": "in/same.txt",
                    }
                ],
            }
        ]
    }
    await submit_ok(stack, spec)
    again = await stack.client.put(put, content=b"one")
    assert again.status_code == 201
    assert again.json()["unchanged"] is True
    assert await ran(stack, await submit_ok(stack, spec)) == {"read": False}
    assert (await stack.client.put(put, content=b"owe")).json()["unchanged"] is False
    assert await ran(stack, await submit_ok(stack, spec)) == {"read": True}


async def test_explain_names_the_changed_field_and_cache_evict_forces_a_run(stack: Stack) -> None:
    """why-not-reused shows the differing field; evicting the cache makes the step run again."""
    a = await stack.upload_snapshot({"produce.py": PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    first = await submit_ok(stack, pipeline(a, b))
    rid = await submit_ok(stack, pipeline(a, b), parameters={"word": "z"})
    why = (await stack.client.get(f"/api/v1/runs/{rid}/steps/a/reuse")).json()
    assert why["reused_from"] is None
    assert why["closest"]["run_id"] == first
    assert [d["field"] for d in why["differences"]] == ["arguments"]
    again = await submit_ok(stack, pipeline(a, b))
    reused = (await stack.client.get(f"/api/v1/runs/{again}/steps/a/reuse")).json()
    assert reused["reused_from"] == {"run_id": first, "step": "a"}
    r = await stack.client.delete("/api/v1/cache", params={"run_id": first})
    assert r.json()["evicted"] == 2
    assert (await stack.client.delete("/api/v1/cache")).status_code == 400
    assert await ran(stack, await submit_ok(stack, pipeline(a, b))) == {"a": True, "b": True}


async def test_identical_steps_submitted_together_run_once(stack: Stack) -> None:
    """Two runs of the same slow step at once: one runs it, the other waits and reuses it."""
    a = await stack.upload_snapshot({"produce.py": "import time\ntime.sleep(1.5)\n" + PRODUCE})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    first, second = await asyncio.gather(stack.submit(pipeline(a, b)), stack.submit(pipeline(a, b)))
    runs = [await stack.wait_run(r.json()["run_id"]) for r in (first, second)]
    assert [r["status"] for r in runs] == ["Completed", "Completed"]
    executed = [await ran(stack, r["run_id"]) for r in runs]
    assert sorted(e["a"] for e in executed) == [False, True]
    assert sorted(e["b"] for e in executed) == [False, True]


async def test_hash_paths_digest_narrows_what_counts(stack: Stack) -> None:
    """With a source digest of its hash_paths, other files' changes do not re-run the step."""
    a1 = await stack.upload_snapshot({"produce.py": PRODUCE, "notes.md": "v1"})
    a2 = await stack.upload_snapshot({"produce.py": PRODUCE, "notes.md": "v2"})
    b = await stack.upload_snapshot({"consume.py": CONSUME})
    narrowed = "sha256:" + "a" * 64  # what the SDK sends: the digest of produce.py alone
    await submit_ok(stack, pipeline(a1, b, source_digest=narrowed))
    rid = await submit_ok(stack, pipeline(a2, b, source_digest=narrowed))
    assert await ran(stack, rid) == {"a": False, "b": False}
    rid = await submit_ok(stack, pipeline(a2, b))
    assert await ran(stack, rid) == {"a": True, "b": False}
