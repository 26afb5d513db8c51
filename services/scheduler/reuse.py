"""Step fingerprints and reuse checks: what a step's result depends on, and whether an
earlier result is still there to be reused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from contracts import events as ev
from contracts.spec import DatasetInput, DatastoreInput, PipelineDataInput, StepSpec
from services.runtime.errors import PermanentError
from services.runtime.storage import open_named
from services.scheduler import store

__all__ = ["FINGERPRINT_VERSION", "fingerprint_doc", "outputs_exist"]

#: bump when the fingerprint's content changes, so old entries stop matching
FINGERPRINT_VERSION = 2


async def _datastore_identity(conn: Any, datastore: str, path: str) -> dict[str, Any]:
    try:
        ds = await open_named(conn, datastore)
        objects = await ds.identity(path)
    except (PermanentError, ValueError, OSError) as exc:
        # The data mounter reports the real error; here it only makes the step unreusable.
        return {"datastore": datastore, "path": path, "error": str(exc)}
    return {"datastore": datastore, "path": path, "objects": [list(o) for o in objects]}


async def fingerprint_doc(
    conn: asyncpg.Connection, run: store.RunRow, sspec: StepSpec, dispatch: ev.StepDispatched
) -> dict[str, Any]:
    """The fields a step's fingerprint digests, as a document one can diff."""
    upstream = await store.output_digests(
        conn, run.run_id, [i.name for i in sspec.inputs if isinstance(i, PipelineDataInput)]
    )
    inputs: dict[str, Any] = {}
    for inp in sspec.inputs:
        if isinstance(inp, DatastoreInput):
            inputs[inp.name] = {
                "kind": "datastore",
                **await _datastore_identity(conn, inp.datastore, inp.path_on_datastore),
            }
        elif isinstance(inp, DatasetInput):
            # the content, not the dataset's version number: a re-registered version of the
            # same data reuses, changed data behind the same version does not
            inputs[inp.name] = {
                "kind": "dataset",
                "dataset_kind": inp.dataset_kind,
                "options": inp.options,
                "paths": [await _datastore_identity(conn, p.datastore, p.path) for p in inp.paths],
            }
        else:
            inputs[inp.name] = {"kind": "pipeline_data", "digest": upstream.get(inp.name)}
    return {
        "version": FINGERPRINT_VERSION,
        # The name is part of what a script can see (Run.get_context()), so it counts.
        "step": sspec.name,
        "script_name": sspec.script_name,
        # hash_paths narrows what counts: then only those files' digest
        "snapshot": sspec.source_digest or sspec.snapshot,
        "arguments": dispatch.arguments,
        "environment": await store.environment_digest(conn, sspec.environment),
        "compute_kind": await store.compute_kind(conn, sspec.compute_target),
        "inputs": inputs,
        "step_kind": sspec.step_kind,
        "outputs": sorted([o.name, o.datastore, o.path_on_datastore or ""] for o in sspec.outputs),
        # only for command steps, so that the fingerprints of script steps stay as they were
        **(
            {"command": dispatch.command, "processes": dispatch.processes}
            if sspec.step_kind == "command"
            else {}
        ),
    }


async def outputs_exist(conn: Any, outputs: Sequence[ev.UploadedOutput]) -> bool:
    """Whether every file of these committed outputs is still in its datastore."""
    for out in outputs:
        if out.files == 0:
            continue
        try:
            ds = await open_named(conn, out.datastore)
            present = await ds.listing(out.path)
        except (PermanentError, ValueError, OSError):
            return False
        if len(present) < out.files:
            return False
    return True
