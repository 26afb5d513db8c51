"""Snapshots: ignore-file precedence and nesting, stable digests, links, incremental upload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from headrace.client import ApiClient
from headrace.errors import SnapshotError
from headrace.snapshot import snapshot_directory, upload_snapshot


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def paths(root: Path) -> list[str]:
    return [f.path for f in snapshot_directory(root).manifest.files]


def test_amlignore_wins_over_gitignore_and_nested_files_apply_below(tmp_path: Path) -> None:
    """In a directory .amlignore beats .gitignore; a nested ignore file rules its subtree."""
    tree(
        tmp_path,
        {
            ".gitignore": "*.csv\n",
            ".amlignore": "*.log\n",
            "a.csv": "",
            "a.log": "",
            "train.py": "",
            "sub/.gitignore": "secret.txt\n",
            "sub/secret.txt": "",
            "sub/keep.txt": "",
            ".git/config": "",
            "__pycache__/x.pyc": "",
        },
    )
    assert paths(tmp_path) == [
        ".amlignore",
        ".gitignore",
        "a.csv",
        "sub/.gitignore",
        "sub/keep.txt",
        "train.py",
    ]


def test_headraceignore_wins_over_both(tmp_path: Path) -> None:
    """.headraceignore takes precedence over .amlignore and .gitignore."""
    tree(
        tmp_path,
        {".headraceignore": "data/\n", ".amlignore": "*.py\n", "data/x": "", "train.py": ""},
    )
    snap = snapshot_directory(tmp_path)
    assert [f.path for f in snap.manifest.files] == [".amlignore", ".headraceignore", "train.py"]
    why = snap.why_excluded("data/x")
    assert why is not None
    assert why.ignore_file == ".headraceignore"


def test_digest_depends_on_content_not_time(tmp_path: Path) -> None:
    """The same files give the same digest; one changed byte gives another."""
    tree(tmp_path, {"a.py": "x = 1\n", "b/c.py": "y = 2\n"})
    first = snapshot_directory(tmp_path).digest
    os.utime(tmp_path / "a.py", (1, 1))
    assert snapshot_directory(tmp_path).digest == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert snapshot_directory(tmp_path).digest != first


def test_link_escaping_the_directory_is_rejected(tmp_path: Path) -> None:
    """A symlink pointing outside the source directory is refused, naming it."""
    src = tree(tmp_path / "src", {"a.py": ""})
    (tmp_path / "outside.txt").write_text("secret")
    (src / "leak.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SnapshotError, match=r"leak\.txt"):
        snapshot_directory(src)


def test_upload_sends_only_missing_blobs(tmp_path: Path) -> None:
    """Only blobs the server reports missing are uploaded, then the manifest."""
    tree(tmp_path, {"old.py": "old", "new.py": "new"})
    snap = snapshot_directory(tmp_path)
    new_digest = next(f.digest for f in snap.manifest.files if f.path == "new.py")
    puts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/blobs/missing"):
            return httpx.Response(200, json={"missing": [new_digest, snap.digest]})
        puts.append(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(201, json={})

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    sent = upload_snapshot(client, snap, show_progress=False, manifest_cache=tmp_path / "c")
    assert puts == [new_digest, snap.digest]
    assert sent == len("new") + len(snap.manifest.canonical_bytes())
    assert json.loads(snap.manifest.canonical_bytes())["version"] == 1


def test_symlink_loops_are_rejected(tmp_path: Path) -> None:
    """Links leading back to a directory being walked (directly or via a sibling) fail."""
    src = tree(tmp_path / "src", {"a/x.py": ""})
    (src / "a" / "back").symlink_to(src, target_is_directory=True)
    with pytest.raises(SnapshotError, match="loop"):
        snapshot_directory(src)
    other = tree(tmp_path / "other", {"a/x.py": "", "b/y.py": ""})
    (other / "a" / "to_b").symlink_to(other / "b", target_is_directory=True)
    (other / "b" / "to_a").symlink_to(other / "a", target_is_directory=True)
    with pytest.raises(SnapshotError, match="loop"):
        snapshot_directory(other)


def test_resubmit_sends_manifest_changes_not_the_whole_manifest(tmp_path: Path) -> None:
    """After one upload, a changed tree sends only the changed file and the changed entries."""
    src = tree(tmp_path / "src", {f"f{i}.txt": str(i) for i in range(50)})
    cache = tmp_path / "cache"
    requests: list[tuple[str, str, bytes]] = []
    have: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append((request.method, request.url.path, request.content))
        if request.url.path.endswith("/blobs/missing"):
            wanted = json.loads(request.content)["digests"]
            return httpx.Response(200, json={"missing": [d for d in wanted if d not in have]})
        if request.url.path.endswith("/snapshots"):
            have.add(json.loads(request.content)["digest"])
            return httpx.Response(201, json={})
        have.add(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(201, json={})

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    upload_snapshot(client, snapshot_directory(src), show_progress=False, manifest_cache=cache)
    requests.clear()
    (src / "f7.txt").write_text("changed")
    (src / "f8.txt").unlink()
    second = snapshot_directory(src)
    sent = upload_snapshot(client, second, show_progress=False, manifest_cache=cache)
    methods = [(m, p.rsplit("/", 1)[-1]) for m, p, _ in requests]
    assert methods[0] == ("POST", "missing")
    assert methods[-1] == ("POST", "snapshots")
    body = json.loads(requests[-1][2])
    assert body["digest"] == second.digest
    assert sorted((c["path"], c["entry"] is None) for c in body["changes"]) == [
        ("f7.txt", False),
        ("f8.txt", True),
    ]
    assert sent < len(second.manifest.canonical_bytes())
