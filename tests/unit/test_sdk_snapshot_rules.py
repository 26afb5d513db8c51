"""hash_paths digests, snapshot size limits and git information."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from headrace.errors import SnapshotError
from headrace.gitinfo import git_info
from headrace.snapshot import check_size, paths_digest, snapshot_directory


def test_paths_digest_ignores_files_outside_hash_paths(tmp_path: Path) -> None:
    """Only files under hash_paths change the digest; unknown paths are an error."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("a")
    (tmp_path / "README.md").write_text("1")
    first = paths_digest(snapshot_directory(tmp_path), ["src"])
    (tmp_path / "README.md").write_text("2")
    assert paths_digest(snapshot_directory(tmp_path), ["src/"]) == first
    (tmp_path / "src" / "model.py").write_text("b")
    assert paths_digest(snapshot_directory(tmp_path), ["src"]) != first
    with pytest.raises(SnapshotError, match="nope"):
        paths_digest(snapshot_directory(tmp_path), ["nope"])


def test_size_limit_names_the_largest_files(tmp_path: Path) -> None:
    """A snapshot over the limit is refused naming its largest files and the way out."""
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    (tmp_path / "small.py").write_text("x")
    snap = snapshot_directory(tmp_path)
    check_size(snap, 10_000)
    with pytest.raises(SnapshotError, match=r"big\.bin.*headraceignore"):
        check_size(snap, 1000)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_git_info_of_a_work_tree(tmp_path: Path) -> None:
    """Commit, branch and dirty flag are read from the work tree; outside one, None."""
    assert git_info(tmp_path) is None
    env = ["-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(tmp_path), *env, "commit", "-qm", "c"], check=True)
    info = git_info(tmp_path)
    assert info is not None
    assert info["branch"] == "main"
    assert info["dirty"] is False
    assert len(str(info["commit"])) == 40
    (tmp_path / "a.py").write_text("y")
    assert git_info(tmp_path)["dirty"] is True  # type: ignore[index]
