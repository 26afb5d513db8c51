"""Binding inputs is idempotent: a redelivered mount request never unbinds a running step's
input (the race the chaos suite found)."""

from __future__ import annotations

import os
from pathlib import Path

from contracts import events as ev
from services.data_mounter.handlers import bind_input
from services.runtime.storage import DatastoreRecord, open_datastore


async def test_second_binding_keeps_the_first(tmp_path: Path) -> None:
    """Binding twice returns the existing link without removing or re-creating it."""
    store = open_datastore(
        DatastoreRecord(name="ds", kind="local", config={"root": str(tmp_path / "ds")})
    )
    (tmp_path / "ds" / "d").mkdir(parents=True)
    (tmp_path / "ds" / "d" / "value").write_text("v")
    target = tmp_path / "scratch" / "inputs" / "x"
    inp = ev.ResolvedInput(name="x", datastore="ds", path="d", mode="mount", pipeline_data=True)
    first, _ = await bind_input(store, inp, target)
    inode = os.lstat(target).st_ino
    second, _ = await bind_input(store, inp, target)
    assert first == second
    assert first.method == "link"
    assert os.lstat(target).st_ino == inode
    assert (target / "value").read_text() == "v"


async def test_download_is_complete_or_absent(tmp_path: Path) -> None:
    """Download mode copies through a temporary name, leaving no partial input behind."""
    store = open_datastore(
        DatastoreRecord(name="ds", kind="local", config={"root": str(tmp_path / "ds")})
    )
    (tmp_path / "ds" / "d").mkdir(parents=True)
    (tmp_path / "ds" / "d" / "value").write_text("v")
    target = tmp_path / "scratch" / "inputs" / "x"
    inp = ev.ResolvedInput(name="x", datastore="ds", path="d", mode="download")
    binding, _ = await bind_input(store, inp, target)
    assert binding.method == "copy"
    assert (target / "value").read_text() == "v"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x"]
