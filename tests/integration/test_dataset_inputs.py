"""Datasets as step inputs and DataTransferStep, on the real stack and real object stores."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.servers import AzuriteServer, SeaweedServer, azurite, seaweedfs

pytestmark = pytest.mark.xdist_group("objectstores")
SERVER_FIXTURES = (seaweedfs, azurite)
DEFAULT = "workspaceblobstore"

READ_TABLE = """\
from headrace import Run
ds = Run.get_context().input_datasets["training"]
df = ds.to_pandas_dataframe()
print("rows", len(df), "sum", int(df["y"].sum()), ds.name, ds.version)
"""
LIST_FILES = """\
import os, sys
from headrace import Run
ds = Run.get_context().input_datasets["images"]
print("arg", sorted(os.listdir(sys.argv[1])))
print("path", isinstance(ds, str) and os.path.samefile(ds, sys.argv[1]))
print("files", sorted(f for _, _, fs in os.walk(ds, followlinks=True) for f in fs))
"""
READ_DIR = """\
import os, sys
root = sys.argv[1]
for dirpath, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        path = os.path.join(dirpath, f)
        print(os.path.relpath(path, root), open(path).read())
"""


async def put(stack: Stack, ds: str, key: str, data: bytes) -> None:
    r = await stack.client.put(
        f"/api/v1/datastores/{ds}/objects/{key}", params={"overwrite": "true"}, content=data
    )
    assert r.status_code == 201, r.text


async def register(stack: Stack, name: str, kind: str, paths: list[tuple[str, str]]) -> int:
    body = {"name": name, "kind": kind, "paths": [{"datastore": d, "path": p} for d, p in paths]}
    r = await stack.client.post("/api/v1/datasets", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def step(name: str, script: str, snap: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "script_name": script, "snapshot": snap, "allow_reuse": False, **kw}


async def run(stack: Stack, spec: dict[str, Any]) -> dict[str, Any]:
    r = await stack.submit(spec)
    assert r.status_code == 201, r.text
    return await stack.wait_run(r.json()["run_id"], timeout=90)


async def out(stack: Stack, run_id: str, name: str, stream: str = "stdout") -> str:
    r = await stack.client.get(f"/api/v1/runs/{run_id}/steps/{name}/logs/{stream}")
    return r.text


async def test_tabular_dataset_feeds_a_step_and_records_lineage(stack: Stack) -> None:
    """A tabular dataset input reads as one dataframe in the step and its use is recorded as
    lineage; once a file is malformed the step fails naming that file."""
    await put(stack, DEFAULT, "tab/a.csv", b"x,y\n1,2\n3,4\n")
    await put(stack, DEFAULT, "tab/b.csv", b"x,y\n5,6\n")
    version = await register(
        stack, "training", "tabular", [(DEFAULT, "tab/a.csv"), (DEFAULT, "tab/b.csv")]
    )
    snap = await stack.upload_snapshot({"read.py": READ_TABLE})
    dataset = {
        "kind": "dataset",
        "name": "training",
        "dataset_kind": "tabular",
        "paths": [
            {"datastore": DEFAULT, "path": "tab/a.csv"},
            {"datastore": DEFAULT, "path": "tab/b.csv"},
        ],
        "options": {"separator": ",", "header": True},
        "dataset_name": "training",
        "dataset_version": version,
    }
    done = await run(stack, {"steps": [step("read", "read.py", snap, inputs=[dataset])]})
    assert done["status"] == "Completed", done
    assert (await out(stack, done["run_id"], "read")).strip() == "rows 3 sum 12 training 1"
    lineage = (await stack.client.get("/api/v1/datasets/training/lineage")).json()
    assert [(x["run_id"], x["step"], x["dataset_version"]) for x in lineage] == [
        (done["run_id"], "read", 1)
    ]

    await put(stack, DEFAULT, "tab/a.csv", b"x,y\n1,2\n3,4,5,6\n")  # malformed now
    bad = await run(stack, {"steps": [step("read", "read.py", snap, inputs=[dataset])]})
    assert bad["status"] == "Failed"
    assert "a.csv is not a valid delimited file" in await out(
        stack, bad["run_id"], "read", "stderr"
    )


async def test_file_dataset_mounted_as_an_argument(stack: Stack) -> None:
    """A mounted file dataset of two paths is passed as an argument (one directory per path);
    as in Azure ML, ``input_datasets[name]`` of a mounted file dataset is that same path."""
    for name in ("cat.png", "dog.png"):
        await put(stack, DEFAULT, f"img/{name}", name.encode())
    await put(stack, DEFAULT, "more/emu.png", b"emu")
    snap = await stack.upload_snapshot({"ls.py": LIST_FILES})
    dataset = {
        "kind": "dataset",
        "name": "images",
        "dataset_kind": "file",
        "mode": "mount",
        "paths": [{"datastore": DEFAULT, "path": "img"}, {"datastore": DEFAULT, "path": "more"}],
    }
    spec = {
        "steps": [
            step(
                "ls",
                "ls.py",
                snap,
                inputs=[dataset],
                arguments=[{"kind": "input", "name": "images"}],
            )
        ]
    }
    done = await run(stack, spec)
    assert done["status"] == "Completed", done
    text = await out(stack, done["run_id"], "ls")
    assert "arg ['0', '1']" in text
    assert "path True" in text
    assert "files ['cat.png', 'dog.png', 'emu.png']" in text


async def _remote(stack: Stack, name: str, kind: str, config: dict[str, object]) -> str:
    r = await stack.client.post(
        "/api/v1/datastores", json={"name": name, "kind": kind, "config": config}
    )
    assert r.status_code == 201, r.text
    return name


async def test_data_transfer_steps_copy_between_stores(
    stack: Stack, seaweedfs: SeaweedServer, azurite: AzuriteServer
) -> None:
    """local -> S3 (PipelineData, read by a script step) and S3 -> Azure (a DataReference)."""
    s3 = await _remote(stack, "s3", "s3", seaweedfs.datastore_config(f"t-{uuid.uuid4().hex[:8]}"))
    az = await _remote(
        stack, "az", "azure_blob", azurite.datastore_config(f"t-{uuid.uuid4().hex[:8]}")
    )
    await put(stack, DEFAULT, "src/a.txt", b"alpha")
    await put(stack, DEFAULT, "src/sub/b.txt", b"beta")
    snap = await stack.upload_snapshot({"read.py": READ_DIR})
    spec = {
        "steps": [
            {
                "name": "to_s3",
                "step_kind": "transfer",
                "inputs": [
                    {
                        "kind": "datastore",
                        "name": "src",
                        "datastore": DEFAULT,
                        "path_on_datastore": "src",
                    }
                ],
                "outputs": [{"name": "copied", "datastore": s3}],
            },
            step(
                "read",
                "read.py",
                snap,
                inputs=[{"kind": "pipeline_data", "name": "copied", "mode": "download"}],
                arguments=[{"kind": "input", "name": "copied"}],
            ),
            {
                "name": "to_azure",
                "step_kind": "transfer",
                "inputs": [{"kind": "pipeline_data", "name": "copied"}],
                "outputs": [{"name": "archive", "datastore": az, "path_on_datastore": "archive"}],
            },
        ]
    }
    done = await run(stack, spec)
    assert done["status"] == "Completed", done
    assert (await out(stack, done["run_id"], "read")).splitlines() == [
        "a.txt alpha",
        "sub/b.txt beta",
    ]
    listed = (
        await stack.client.get(f"/api/v1/datastores/{az}/objects", params={"prefix": "archive"})
    ).json()
    assert sorted(o["path"] for o in listed) == ["archive/a.txt", "archive/sub/b.txt"]

    missing = {
        "steps": [
            {
                "name": "nothing",
                "step_kind": "transfer",
                "inputs": [
                    {
                        "kind": "datastore",
                        "name": "src",
                        "datastore": DEFAULT,
                        "path_on_datastore": "no/such/path",
                    }
                ],
                "outputs": [{"name": "copied", "datastore": s3}],
            }
        ]
    }
    failed = await run(stack, missing)
    assert failed["status"] == "Failed"
    assert "no/such/path" in failed["error"]
    assert DEFAULT in failed["error"]


async def test_transfer_step_rules_are_checked_at_submit(stack: Stack) -> None:
    """A transfer step with a script and no input is a 422 saying it runs no script and copies
    one source to one destination."""
    bad = {
        "steps": [
            {
                "name": "t",
                "step_kind": "transfer",
                "script_name": "x.py",
                "inputs": [],
                "outputs": [{"name": "o"}],
            }
        ]
    }
    r = await stack.submit(bad)
    assert r.status_code == 422
    assert "copies one source to one destination" in r.text
    assert "runs no script" in r.text
