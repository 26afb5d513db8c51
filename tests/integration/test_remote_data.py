"""Step inputs and outputs on remote datastores (SeaweedFS for S3, Azurite for Azure Blob), in
download mode (through the node's data cache) and mount mode (read-only rclone FUSE mounts).

What matters: a step reads remote data as files whatever the mode; an object is downloaded
once per node and content version (a second step or run reading it hits the cache, a changed
object is fetched again); a mount is live while the step runs and gone after it; mount mode
falls back to a copy with a note where it cannot mount; a bad input fails only its step, names
the datastore and the path, and no credential shows anywhere.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import asyncpg
import pytest

from contracts import events as ev
from contracts.envelope import decode
from contracts.topics import Topics
from services.data_mounter.cache import DataCache, cache_key
from services.data_mounter.service import DataMounterService
from services.runtime.mounts import fuse_mounts_under
from services.runtime.settings import RuntimeSettings
from services.runtime.storage import DatastoreRecord, load_datastore, open_datastore
from tests.integration.conftest import Stack, running_stack
from tests.integration.kafka_tools import read_all
from tests.servers import AzuriteServer, SeaweedServer, azurite, seaweedfs

pytestmark = pytest.mark.xdist_group("objectstores")
# The servers' session fixtures, imported so that pytest finds them in this module.
SERVER_FIXTURES = (seaweedfs, azurite)

CSV = b"x,y\n1,2\n3,4\n5,6\n"
CSV_KEY = "in/data.csv"

#: Step A: the S3 CSV (download mode) -> sum of y, written to an output on Azure.
STEP_A = """\
import os, sys, pathlib
raw, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
st = os.lstat(raw)
rows = raw.read_text().splitlines()[1:]
out.mkdir(parents=True, exist_ok=True)
(out / "sum.txt").write_text(str(sum(int(r.split(",")[1]) for r in rows)))
print("link" if os.path.islink(raw) else "file", "nlink>1" if st.st_nlink > 1 else "nlink=1",
      "inode", st.st_ino)
"""

#: Step B: A's output (on Azure) and the S3 CSV, both in mount mode.
STEP_B = """\
import os, sys
summary, raw = sys.argv[1], sys.argv[2]
def how(p):
    real = os.path.realpath(p)
    point = real if os.path.isdir(real) else os.path.dirname(real)
    return "mounted" if os.path.ismount(point) else "local"
print("summary", open(os.path.join(summary, "sum.txt")).read(), how(summary))
print("raw", open(raw).read().count("\\n"), how(raw))
"""

#: A step that only reads its input and prints the input's inode.
READ = """\
import os, sys
print(open(sys.argv[1]).read().splitlines()[-1], "inode", os.stat(sys.argv[1]).st_ino)
"""


def _name(base: str) -> str:
    return f"{base}{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def remote(stack: Stack, seaweedfs: SeaweedServer, azurite: AzuriteServer) -> tuple[str, str]:
    """An S3 and an Azure datastore registered through the API, each under a fresh prefix."""
    return await _register_both(stack, seaweedfs, azurite)


async def _register_both(
    stack: Stack, seaweedfs: SeaweedServer, azurite: AzuriteServer
) -> tuple[str, str]:
    names = []
    for name, kind, config in (
        ("s3data", "s3", seaweedfs.datastore_config(_name("rd-"))),
        ("azdata", "azure_blob", azurite.datastore_config(_name("rd-"))),
    ):
        r = await stack.client.post(
            "/api/v1/datastores",
            json={"name": name, "kind": kind, "config": config},
            timeout=90,
        )
        assert r.status_code == 201, r.text
        names.append(name)
    return names[0], names[1]


async def _put(stack: Stack, ds: str, key: str, data: bytes) -> None:
    r = await stack.client.put(
        f"/api/v1/datastores/{ds}/objects/{key}", params={"overwrite": "true"}, content=data
    )
    assert r.status_code == 201, r.text


def _step(name: str, script: str, snap: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "script_name": script, "snapshot": snap, "allow_reuse": False, **kw}


def _raw(ds: str, mode: str, path: str = CSV_KEY, name: str = "raw") -> dict[str, Any]:
    return {
        "kind": "datastore",
        "name": name,
        "datastore": ds,
        "path_on_datastore": path,
        "mode": mode,
    }


def _input(name: str) -> dict[str, str]:
    return {"kind": "input", "name": name}


async def _run(stack: Stack, spec: dict[str, Any]) -> dict[str, Any]:
    r = await stack.submit(spec)
    assert r.status_code == 201, r.text
    return await stack.wait_run(r.json()["run_id"], timeout=120)


async def _log(stack: Stack, run_id: str, step: str, stream: str = "stdout") -> str:
    r = await stack.client.get(f"/api/v1/runs/{run_id}/steps/{step}/logs/{stream}")
    return r.text if r.status_code == 200 else ""


def _cache(stack: Stack) -> DataCache:
    svc = next(s for s in stack.services if isinstance(s, DataMounterService))
    assert svc.handlers is not None
    return svc.handlers.cache


async def _record(stack: Stack, name: str) -> DatastoreRecord:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return await load_datastore(conn, name)
    finally:
        await conn.close()


async def _mounted_events(stack: Stack, run_id: str) -> dict[str, ev.DataMounted]:
    topic = Topics(stack.settings.topic_prefix).results
    out = {}
    for k, v, h in await read_all(stack.settings.kafka_bootstrap, topic):
        event = decode(k, v, list(h.items())).event
        if isinstance(event, ev.DataMounted) and event.run_id == run_id:
            out[event.step] = event
    return out


async def _entry_inode(stack: Stack, ds: str, key: str) -> tuple[int, int]:
    """(inode, mode bits) of the node-cache entry of the object's current version."""
    record = await _record(stack, ds)
    meta = await open_datastore(record).identity(key)
    (_, size, etag) = meta[0]
    st = os.stat(_cache(stack).path(cache_key(record, key, size, etag)))
    return st.st_ino, st.st_mode & 0o777


async def test_remote_inputs_outputs_cache_and_mounts(
    stack: Stack, remote: tuple[str, str]
) -> None:
    """A download input is a read-only hard link into the node cache, an Azure output is readable
    through the API, mount inputs are live FUSE mounts gone after the step; a second run hits
    the cache and a changed object is downloaded again."""
    s3, az = remote
    await _put(stack, s3, CSV_KEY, CSV)
    snap = await stack.upload_snapshot({"a.py": STEP_A, "b.py": STEP_B, "read.py": READ})
    spec = {
        "steps": [
            _step(
                "a",
                "a.py",
                snap,
                inputs=[_raw(s3, "download")],
                outputs=[{"name": "summary", "datastore": az}],
                arguments=[_input("raw"), {"kind": "output", "name": "summary"}],
            ),
            _step(
                "b",
                "b.py",
                snap,
                inputs=[
                    {"kind": "pipeline_data", "name": "summary", "mode": "mount"},
                    _raw(s3, "mount"),
                ],
                arguments=[_input("summary"), _input("raw")],
            ),
        ]
    }
    done = await _run(stack, spec)
    rid = done["run_id"]
    assert done["status"] == "Completed", done
    # Step A: a hard link into the node cache, not a symbolic link.
    a_out = (await _log(stack, rid, "a")).split()
    assert a_out[:2] == ["file", "nlink>1"], a_out
    inode, mode = await _entry_inode(stack, s3, CSV_KEY)
    assert int(a_out[3]) == inode
    assert mode == 0o444
    # A's output is on the Azure datastore and readable through the API.
    out = (await stack.client.get(f"/api/v1/runs/{rid}/steps/a/outputs/summary")).json()
    assert out["datastore"] == az
    data = await stack.client.get(f"/api/v1/runs/{rid}/steps/a/outputs/summary/files/sum.txt")
    assert data.text == "12"
    # Step B read both inputs through live FUSE mounts (S3 and Azure), and no note was needed.
    assert (await _log(stack, rid, "b")).splitlines() == ["summary 12 mounted", "raw 4 mounted"]
    mounted = await _mounted_events(stack, rid)
    assert {i.name: i.method for i in mounted["b"].inputs} == {"summary": "fuse", "raw": "fuse"}
    assert mounted["b"].notes == []
    assert {i.name: i.method for i in mounted["a"].inputs} == {"raw": "copy"}
    # Unmounted once the step ended.
    assert fuse_mounts_under(stack.settings.scratch) == []
    cache = _cache(stack)
    assert cache.downloads == 1  # A's CSV; B mounted, so nothing else was fetched

    # A second run reading the same object hits the node cache: no download, same inode.
    again = await _run(
        stack,
        {
            "steps": [
                _step(
                    "again",
                    "read.py",
                    snap,
                    inputs=[_raw(s3, "download")],
                    arguments=[_input("raw")],
                )
            ]
        },
    )
    assert again["status"] == "Completed", again
    assert (await _log(stack, again["run_id"], "again")).split() == ["5,6", "inode", str(inode)]
    assert cache.downloads == 1
    assert cache.hits >= 1

    # A changed object (new ETag) is a new entry: downloaded again, the step sees the new data.
    await _put(stack, s3, CSV_KEY, CSV + b"7,8\n")
    changed = await _run(
        stack,
        {
            "steps": [
                _step(
                    "changed",
                    "read.py",
                    snap,
                    inputs=[_raw(s3, "download")],
                    arguments=[_input("raw")],
                )
            ]
        },
    )
    assert changed["status"] == "Completed", changed
    assert (await _log(stack, changed["run_id"], "changed")).split()[0] == "7,8"
    assert cache.downloads == 2
    new_inode, _ = await _entry_inode(stack, s3, CSV_KEY)
    assert new_inode != inode


async def test_mount_mode_falls_back_to_copy_with_a_note(
    runtime_settings: RuntimeSettings,
    monkeypatch: pytest.MonkeyPatch,
    seaweedfs: SeaweedServer,
    azurite: AzuriteServer,
) -> None:
    """Where FUSE is not available (here: switched off), mount mode copies and says why in
    the step's mount log and in ``DataMounted.notes``."""
    monkeypatch.setenv("HEADRACE_FUSE_MOUNTS", "false")
    async with running_stack(runtime_settings) as stack:
        s3, az = await _register_both(stack, seaweedfs, azurite)
        await _put(stack, s3, CSV_KEY, CSV)
        await _put(stack, az, "out/sum.txt", b"12")
        snap = await stack.upload_snapshot({"b.py": STEP_B})
        done = await _run(
            stack,
            {
                "steps": [
                    _step(
                        "b",
                        "b.py",
                        snap,
                        inputs=[_raw(az, "mount", "out", name="summary"), _raw(s3, "mount")],
                        arguments=[_input("summary"), _input("raw")],
                    )
                ]
            },
        )
        rid = done["run_id"]
        assert done["status"] == "Completed", done
        assert (await _log(stack, rid, "b")).splitlines() == ["summary 12 local", "raw 4 local"]
        expected = [
            f"input 'summary': datastore {az!r} cannot be mounted here "
            "(FUSE mounts are disabled); copied",
            f"input 'raw': datastore {s3!r} cannot be mounted here "
            "(FUSE mounts are disabled); copied",
        ]
        assert (await _log(stack, rid, "b", "mount")).splitlines() == expected
        mounted = await _mounted_events(stack, rid)
        assert mounted["b"].notes == expected
        assert {i.method for i in mounted["b"].inputs} == {"copy"}


async def test_bad_remote_inputs_fail_only_their_step(
    stack: Stack,
    remote: tuple[str, str],
    seaweedfs: SeaweedServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A missing object and refused credentials fail their own steps (the others complete),
    naming datastore and path; the wrong secret appears in no event, log or API answer. A path
    escaping its datastore is refused with a clear error."""
    s3, _ = remote
    await _put(stack, s3, CSV_KEY, CSV)
    # Credentials rotated after registration (registration itself refuses wrong ones).
    r = await stack.client.post(
        "/api/v1/datastores",
        json={"name": "s3stale", "kind": "s3", "config": seaweedfs.datastore_config(_name("rd-"))},
        timeout=90,
    )
    assert r.status_code == 201, r.text
    wrong = f"wrong-secret-{uuid.uuid4().hex}"
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        await conn.execute(
            "UPDATE datastores SET config = jsonb_set(config, '{secret_access_key}',"
            " to_jsonb($1::text)) WHERE name = 's3stale'",
            wrong,
        )
    finally:
        await conn.close()
    snap = await stack.upload_snapshot({"read.py": READ})
    steps = [
        _step("good", "read.py", snap, inputs=[_raw(s3, "download")], arguments=[_input("raw")]),
        _step("missing", "read.py", snap, inputs=[_raw(s3, "download", "nowhere/x.csv")]),
        _step("denied", "read.py", snap, inputs=[_raw("s3stale", "mount", CSV_KEY)]),
    ]
    done = await _run(stack, {"steps": steps, "continue_on_step_failure": True})
    rid = done["run_id"]
    by_name = {s["name"]: s for s in done["steps"]}
    assert by_name["good"]["status"] == "Completed", done
    assert by_name["missing"]["status"] == "Failed"
    assert "nowhere/x.csv" in by_name["missing"]["error"]
    assert s3 in by_name["missing"]["error"]
    assert by_name["denied"]["status"] == "Failed"
    denied = by_name["denied"]["error"]
    assert "s3stale" in denied, denied
    assert CSV_KEY in denied, denied
    assert "credentials" in denied, denied
    # The wrong secret is nowhere: run detail, public and internal events, service logs.
    assert wrong not in str(done)
    for topic in (
        Topics(stack.settings.topic_prefix).public,
        Topics(stack.settings.topic_prefix).data,
    ):
        for _, value, _ in await read_all(stack.settings.kafka_bootstrap, topic):
            assert wrong.encode() not in value
    captured = capfd.readouterr()
    assert wrong not in captured.out + captured.err
    for stream in ("stdout", "stderr", "mount"):
        assert wrong not in await _log(stack, rid, "denied", stream)

    # A path escaping the datastore: refused at submit or failing its step, clearly.
    escape = [_step("escape", "read.py", snap, inputs=[_raw(s3, "download", "../outside.csv")])]
    r = await stack.submit({"steps": escape})
    if r.status_code == 201:
        run = await stack.wait_run(r.json()["run_id"], timeout=60)
        assert run["status"] == "Failed"
        error = run["steps"][0]["error"]
    else:
        assert r.status_code == 422, r.text
        error = r.text
    assert "../outside.csv" in error, error
    assert "escapes" in error, error
    assert s3 in error, error
