"""The snapshot benchmark: a 5,000-file, ~200 MB tree submitted, then again with one change."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from headrace.client import ApiClient
from headrace.snapshot import snapshot_directory, upload_snapshot

__all__ = ["snapshot_bench"]


def _make_tree(root: Path, files: int, size: int) -> None:
    for i in range(files):
        d = root / f"pkg{i % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.bin").write_bytes(os.urandom(size))


def snapshot_bench(
    api_url: str, token: str, root: Path, files: int = 5000, size: int = 40 * 1024
) -> dict[str, Any]:
    """Bytes uploaded and time, first submit and after changing one file."""
    _make_tree(root, files, size)
    client = ApiClient(api_url, token=token)
    try:
        t0 = time.perf_counter()
        first = snapshot_directory(root)
        sent_first = upload_snapshot(
            client, first, show_progress=False, manifest_cache=root.parent / "manifests"
        )
        first_s = time.perf_counter() - t0
        changed = root / "pkg00" / "file00000.bin"
        changed.write_bytes(os.urandom(size))
        t0 = time.perf_counter()
        second = snapshot_directory(root)
        sent_second = upload_snapshot(
            client, second, show_progress=False, manifest_cache=root.parent / "manifests"
        )
        second_s = time.perf_counter() - t0
    finally:
        client.close()
    total = sum(f.size for f in first.manifest.files)
    manifest = len(second.manifest.canonical_bytes())
    return {
        "files": files,
        "tree_bytes": total,
        "first_upload_bytes": sent_first,
        "first_s": first_s,
        "resubmit_upload_bytes": sent_second,
        "resubmit_s": second_s,
        "changed_file_bytes": size,
        "manifest_bytes": manifest,
        "resubmit_over_changed_file": sent_second / size,
    }
