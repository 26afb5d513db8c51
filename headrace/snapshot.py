"""Snapshots of source directories: which files a step's code is, by content digest.

A step runs on a copy of its ``source_directory`` as it was at submit. Files are chosen with
gitignore semantics (``pathspec``): in each directory the first of ``.headraceignore``,
``.amlignore``, ``.gitignore`` that exists applies to that directory's subtree (so an
``.amlignore`` takes precedence over a ``.gitignore`` beside it, as in Azure ML), a deeper file
overrides a shallower one, and nothing below an excluded directory can be re-included.
``.git/``, ``__pycache__/`` and ``.headrace/`` are always left out.

Why follow symlinks but refuse those that leave the directory: a link inside the project is
part of the code, while a link to ``~/.ssh`` or ``/data`` would silently ship (or depend on)
files the user never meant to snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
from rich.progress import Progress

from contracts.snapshot import ManifestEntry, SnapshotManifest, digest_file
from headrace.client import ApiClient
from headrace.errors import ApiError, SnapshotError

__all__ = [
    "ALWAYS_EXCLUDED",
    "DEFAULT_MAX_BYTES",
    "IGNORE_FILES",
    "ExcludedEntry",
    "SourceSnapshot",
    "check_size",
    "default_manifest_cache",
    "hash_file",
    "paths_digest",
    "snapshot_directory",
    "upload_snapshot",
]

#: in each directory, the first of these that exists is its ignore file
IGNORE_FILES = (".headraceignore", ".amlignore", ".gitignore")
#: names never snapshotted, wherever they are
ALWAYS_EXCLUDED = frozenset({".git", "__pycache__", ".headrace"})


@dataclass(frozen=True)
class ExcludedEntry:
    """A path left out of the snapshot, and why. Directories end with ``/``."""

    path: str
    reason: str
    #: the ignore file (relative to the source directory) whose pattern matched, if any
    ignore_file: str | None = None
    pattern: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class SourceSnapshot:
    """A source directory's manifest, what was left out, and where each blob's bytes are."""

    root: Path
    manifest: SnapshotManifest
    excluded: tuple[ExcludedEntry, ...]
    #: digest -> a local file with that content, to upload from
    sources: Mapping[str, Path] = field(repr=False)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def has_file(self, path: str) -> bool:
        return any(f.path == path for f in self.manifest.files)

    def why_excluded(self, path: str) -> ExcludedEntry | None:
        """The entry that excluded ``path`` itself or one of its parent directories."""
        for entry in self.excluded:
            if entry.path == path or (entry.path.endswith("/") and path.startswith(entry.path)):
                return entry
        return None


#: ``(digest, size)`` of a file: the same function the server verifies blobs with.
hash_file = digest_file


class _IgnoreRules:
    """One ignore file: its patterns, anchored at the directory holding it."""

    def __init__(self, dir_rel: str, file_rel: str, text: str) -> None:
        self.dir_rel = dir_rel
        self.file_rel = file_rel
        # Keep only pattern lines, remembering their line numbers, so a match can be reported
        # as "file:line"; blank lines and comments are not patterns.
        self.lines = [
            (number, line)
            for number, raw in enumerate(text.splitlines(), 1)
            if (line := raw.rstrip("\r")).strip() and not line.startswith("#")
        ]
        self.spec = pathspec.GitIgnoreSpec.from_lines([line for _, line in self.lines])
        self._numbered = len(self.spec.patterns) == len(self.lines)

    def check(self, rel: str, is_dir: bool) -> tuple[bool, int | None] | None:
        """``(excluded, pattern index)`` if a pattern decides ``rel``, else ``None``."""
        sub = rel[len(self.dir_rel) + 1 :] if self.dir_rel else rel
        result = self.spec.check_file(sub + "/" if is_dir else sub)
        if result.include is None:
            return None
        return result.include, result.index if self._numbered else None


def _load_rules(directory: Path, dir_rel: str) -> _IgnoreRules | None:
    for name in IGNORE_FILES:
        candidate = directory / name
        if candidate.is_file():
            file_rel = f"{dir_rel}/{name}" if dir_rel else name
            try:
                text = candidate.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise SnapshotError(f"cannot read ignore file {file_rel}: {exc}") from exc
            return _IgnoreRules(dir_rel, file_rel, text)
    return None


def _excluded_by(rules: list[_IgnoreRules], rel: str, is_dir: bool) -> ExcludedEntry | None:
    """Deepest ignore file first: the first one with a matching pattern decides."""
    for r in reversed(rules):
        hit = r.check(rel, is_dir)
        if hit is None:
            continue
        excluded, index = hit
        if not excluded:
            return None  # re-included by a "!pattern"
        shown = rel + "/" if is_dir else rel
        if index is None:
            return ExcludedEntry(shown, f"excluded by {r.file_rel}", r.file_rel)
        number, pattern = r.lines[index]
        return ExcludedEntry(
            shown,
            f"excluded by {r.file_rel} line {number}: {pattern}",
            r.file_rel,
            pattern,
            number,
        )
    return None


class _Walker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[ManifestEntry] = []
        self.excluded: list[ExcludedEntry] = []
        self.sources: dict[str, Path] = {}

    def _fail(self, rel: str, what: str) -> SnapshotError:
        return SnapshotError(f"cannot snapshot {self.root}: {rel} {what}")

    def walk(
        self,
        directory: Path,
        rel_dir: str,
        rules: list[_IgnoreRules],
        ancestors: frozenset[Path] = frozenset(),
    ) -> None:
        """Walk ``directory`` (a real path) shown as ``rel_dir``; ``ancestors`` are the real
        paths of the directories above it, to detect symlink loops."""
        ancestors = ancestors | {directory}
        own = _load_rules(directory, rel_dir)
        if own is not None:
            rules = [*rules, own]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise self._fail(rel_dir or ".", f"cannot be listed ({exc})") from exc
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            self._entry(entry, rel, rules, ancestors)

    def _entry(
        self,
        entry: os.DirEntry[str],
        rel: str,
        rules: list[_IgnoreRules],
        ancestors: frozenset[Path],
    ) -> None:
        if entry.name in ALWAYS_EXCLUDED:
            suffix = "/" if entry.is_dir() else ""
            self.excluded.append(ExcludedEntry(rel + suffix, "always excluded"))
            return
        path = Path(entry.path)
        is_link = entry.is_symlink()
        try:
            real = Path(os.path.realpath(path, strict=True)) if is_link else path
            info = real.stat()
        except OSError as exc:
            if _excluded_by(rules, rel, False) is not None:
                self.excluded.append(ExcludedEntry(rel, "broken symlink, ignored"))
                return
            raise self._fail(
                rel, f"is a broken symlink or unreadable ({exc}); remove it or ignore it"
            ) from exc
        is_dir = stat.S_ISDIR(info.st_mode)
        hit = _excluded_by(rules, rel, is_dir)
        if hit is not None:
            self.excluded.append(hit)
            return
        if is_link and not real.is_relative_to(self.root):
            raise self._fail(
                rel,
                f"is a symlink to {real}, outside the source directory; copy what it points to "
                "into the directory, or add the link to .headraceignore",
            )
        if is_dir:
            if real in ancestors:
                raise self._fail(rel, f"is a symlink to {real}, one of its own parents (a loop)")
            self.walk(real, rel, rules, ancestors)
        elif stat.S_ISREG(info.st_mode):
            self._file(real, rel, info)
        else:
            self.excluded.append(ExcludedEntry(rel, "not a regular file (FIFO, socket, device)"))

    def _file(self, path: Path, rel: str, info: os.stat_result) -> None:
        try:
            digest, size = hash_file(path)
        except OSError as exc:
            raise self._fail(rel, f"cannot be read ({exc})") from exc
        self.sources.setdefault(digest, path)
        self.files.append(
            ManifestEntry(
                path=rel, digest=digest, size=size, executable=bool(info.st_mode & stat.S_IXUSR)
            )
        )


def snapshot_directory(source_dir: str | os.PathLike[str]) -> SourceSnapshot:
    """Walk ``source_dir`` with its ignore files and hash what is kept into a manifest.

    The manifest depends only on paths, contents and executable bits, never on timestamps or
    walk order, so an unchanged directory always has the same digest (and its steps can be
    reused). ``excluded`` says what was left out and which ignore file line did it, for
    ``headrace snapshot preview``.
    """
    given = Path(source_dir).expanduser()
    if not given.is_dir():
        raise SnapshotError(
            f"source directory {given} does not exist or is not a directory; pass "
            "source_directory=... pointing at the step's code"
        )
    root = given.resolve()
    walker = _Walker(root)
    walker.walk(root, "", [])
    return SourceSnapshot(
        root=root,
        manifest=SnapshotManifest(files=walker.files),
        excluded=tuple(walker.excluded),
        sources=walker.sources,
    )


def paths_digest(snap: SourceSnapshot, hash_paths: list[str]) -> str:
    """The digest of the snapshot's files under ``hash_paths`` (files or directories), which
    is what step reuse compares when a step gives ``hash_paths``."""
    wanted = [p.strip("/") for p in hash_paths]
    chosen = [
        f
        for f in snap.manifest.files
        if any(f.path == w or f.path.startswith(w + "/") for w in wanted)
    ]
    missing = [
        w for w in wanted if not any(f.path == w or f.path.startswith(w + "/") for f in chosen)
    ]
    if missing:
        raise SnapshotError(
            f"hash_paths {missing} match no file of {snap.root}; list files or directories "
            "relative to the source directory"
        )
    return SnapshotManifest(files=chosen).digest


#: default limit of one snapshot's size (``HEADRACE_SNAPSHOT_MAX_BYTES`` overrides it)
DEFAULT_MAX_BYTES = 2 * 1024**3


def check_size(snap: SourceSnapshot, limit: int | None = None) -> None:
    """Refuse a snapshot larger than ``limit``, naming the largest files to exclude."""
    if limit is None:
        limit = int(os.environ.get("HEADRACE_SNAPSHOT_MAX_BYTES", DEFAULT_MAX_BYTES))
    total = snap.manifest.total_bytes
    if total <= limit:
        return
    largest = sorted(snap.manifest.files, key=lambda f: f.size, reverse=True)[:5]
    names = ", ".join(f"{f.path} ({f.size / 1e6:.1f} MB)" for f in largest)
    raise SnapshotError(
        f"the snapshot of {snap.root} is {total / 1e6:.1f} MB, over the limit of "
        f"{limit / 1e6:.1f} MB; largest files: {names}. Exclude data with a .headraceignore "
        "file (use a DataReference for data), or raise HEADRACE_SNAPSHOT_MAX_BYTES"
    )


def default_manifest_cache() -> Path:
    """Where the SDK remembers the last manifest it uploaded for each source directory."""
    env = os.environ.get("HEADRACE_SNAPSHOT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "headrace" / "manifests"


def _cache_file(cache: Path, client: ApiClient, root: Path) -> Path:
    key = hashlib.sha256(f"{client.base_url}\0{root}".encode()).hexdigest()
    return cache / f"{key}.json"


def _recall(cache: Path | None, client: ApiClient, root: Path) -> SnapshotManifest | None:
    if cache is None:
        return None
    try:
        return SnapshotManifest.model_validate_json(_cache_file(cache, client, root).read_bytes())
    except (OSError, ValueError):
        return None


def _remember(cache: Path | None, client: ApiClient, snap: SourceSnapshot) -> None:
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        target = _cache_file(cache, client, snap.root)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(snap.manifest.canonical_bytes())
        tmp.replace(target)
    except OSError:
        pass  # only an optimisation: the next upload sends the full manifest


def _changes(base: SnapshotManifest, new: SnapshotManifest) -> list[dict[str, object]]:
    old = {f.path: f for f in base.files}
    cur = {f.path: f for f in new.files}
    out: list[dict[str, object]] = [
        {"path": p, "entry": e.model_dump(mode="json")} for p, e in cur.items() if old.get(p) != e
    ]
    out += [{"path": p, "entry": None} for p in old if p not in cur]
    return out


def _upload_manifest(client: ApiClient, snap: SourceSnapshot, cache: Path | None) -> int:
    """Send the manifest as changes to the last one uploaded from this directory when the
    server still has it (a few hundred bytes instead of one line per file), else in full."""
    base = _recall(cache, client, snap.root)
    if base is not None and base.digest != snap.digest:
        body = {
            "base": base.digest,
            "digest": snap.digest,
            "changes": _changes(base, snap.manifest),
        }
        try:
            client.post("/snapshots", body)
            return len(json.dumps(body))
        except ApiError:
            pass  # unknown base or a disagreement: the full manifest settles it
    data = snap.manifest.canonical_bytes()
    client.put_bytes(f"/blobs/{snap.digest}", data)
    return len(data)


def upload_snapshot(
    client: ApiClient,
    snap: SourceSnapshot,
    *,
    show_progress: bool = True,
    manifest_cache: Path | None = None,
) -> int:
    """Upload the blobs the server lacks, then the manifest; return the bytes uploaded.

    Re-submitting a tree with one changed file uploads that file and the manifest's changes.
    """
    cache = manifest_cache if manifest_cache is not None else default_manifest_cache()
    missing = client.post("/blobs/missing", {"digests": [*snap.sources, snap.digest]})["missing"]
    todo = [d for d in missing if d in snap.sources]
    sent = 0
    with Progress(disable=not show_progress or not todo, transient=True) as progress:
        task = progress.add_task(
            f"uploading snapshot of {snap.root.name}",
            total=sum(snap.sources[d].stat().st_size for d in todo),
        )
        for digest in todo:
            data = snap.sources[digest].read_bytes()
            client.put_bytes(f"/blobs/{digest}", data)
            sent += len(data)
            progress.advance(task, len(data))
    if snap.digest in missing:
        sent += _upload_manifest(client, snap, cache)
    _remember(cache, client, snap)
    return sent
