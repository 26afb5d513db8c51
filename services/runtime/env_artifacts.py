"""Built environments as stored artifacts: the archive format and the datastore layout.

Shared by the image builder (which packs and publishes) and the step runners (which download
and unpack into their cache), so both agree on one format without a runner importing the
builder.
"""

from __future__ import annotations

import asyncio
import json
import re
import tarfile
from pathlib import Path

from contracts.snapshot import DIGEST_PATTERN, digest_file
from services.runtime.errors import PermanentError
from services.runtime.storage import ObjectStore

__all__ = [
    "ARCHIVE_INFO",
    "ARCHIVE_NAME",
    "ArchiveMismatch",
    "EnvironmentArtifacts",
    "UnsafeArchive",
    "digest_hex",
    "pack",
    "unpack",
]

_DIGEST_RE = re.compile(DIGEST_PATTERN)

#: The archive is an uncompressed tar. Measured on numpy + scikit-learn + scipy (6,871 files,
#: 273 MB installed): tar 282 MB, packed in 1.0 s, unpacked in 1.7 s; gzip level 1 94 MB but
#: 2.8 s to pack and 2.8 s to unpack. The runner cache makes the download a once-per-runner
#: cost and the only datastore kind is a local directory, so the CPU is the cost that counts;
#: ``unpack`` detects gzip, so switching for a remote datastore is a change of ``pack`` only.
ARCHIVE_NAME = "env.tar"

#: The archive's own content digest and size, written by the builder before the archive.
#: Why a record of its own: an environment's digest names what was *locked* (requirements,
#: Python, variables, platform), not the archive's bytes, so a runner needs this to check that
#: what it downloaded is what the builder packed.
ARCHIVE_INFO = "archive.json"


class UnsafeArchive(PermanentError):
    """An environment archive holds a member that would land outside its directory."""


class ArchiveMismatch(PermanentError):
    """A downloaded environment archive is not the one the image builder published."""


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:...`` digest, for paths.

    Why: ``PYTHONPATH`` separates entries with ``:``, so a directory named ``sha256:...``
    could never be put on it.
    """
    if not _DIGEST_RE.match(digest):
        raise ValueError(f"{digest!r} is not a sha256 digest")
    return digest.removeprefix("sha256:")


def pack(src: Path, archive: Path) -> None:
    """Write ``src``'s contents to ``archive`` as an uncompressed tar (see ``ARCHIVE_NAME``).

    Members are relative to ``src`` and sorted, owners are dropped: the runner unpacks as
    whatever user it runs as.
    """

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(src.iterdir()):
            tar.add(entry, arcname=entry.name, recursive=True, filter=reset)
    tmp.replace(archive)


def _strict_data_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, and absolute names refused rather than made relative.

    ``pack`` never writes an absolute name, so one in an archive means it was crafted.
    """
    if member.name.startswith(("/", "\\")):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def unpack(archive: Path, dest: Path) -> int:
    """Extract ``archive`` into ``dest``; return the bytes of regular files written.

    Uses tarfile's ``data`` filter (Python 3.11.4+; this interpreter is 3.11.7): absolute
    paths, ``..`` components, links pointing outside ``dest`` and device files are refused
    with ``UnsafeArchive``. ``dest``
    may hold a partial tree after a failure, so callers unpack into a temporary directory.
    Gzip archives are accepted too (the mode is detected).
    """
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter=_strict_data_filter)  # noqa: S202 (filtered)
            total = sum(m.size for m in tar.getmembers() if m.isreg())
    except tarfile.FilterError as exc:
        raise UnsafeArchive(f"archive {archive.name} is unsafe: {exc}") from exc
    return total


class EnvironmentArtifacts:
    """Where a built environment lives in a datastore, and how it is published.

    Layout under ``environments/<hex digest>/``: ``env.tar``, ``requirements.lock``,
    ``build.log``, ``Containerfile``. The archive is written last, so its existence means the
    artifact is complete: ``exists`` checks only it, and a builder that died half-way is
    simply rebuilt.
    """

    PREFIX = "environments"

    @classmethod
    def key(cls, digest: str, name: str) -> str:
        return f"{cls.PREFIX}/{digest_hex(digest)}/{name}"

    @classmethod
    def archive_key(cls, digest: str) -> str:
        return cls.key(digest, ARCHIVE_NAME)

    @classmethod
    def lock_key(cls, digest: str) -> str:
        return cls.key(digest, "requirements.lock")

    @classmethod
    def log_key(cls, digest: str) -> str:
        return cls.key(digest, "build.log")

    @classmethod
    def containerfile_key(cls, digest: str) -> str:
        return cls.key(digest, "Containerfile")

    @classmethod
    def info_key(cls, digest: str) -> str:
        return cls.key(digest, ARCHIVE_INFO)

    @classmethod
    async def publish(
        cls,
        store: ObjectStore,
        digest: str,
        archive: Path,
        locked: str,
        log: Path | bytes,
        containerfile_text: str | None = None,
    ) -> None:
        """Upload lock, log, Containerfile and the archive's digest record, then the archive
        under its final key."""
        await store.put(cls.lock_key(digest), locked.encode())
        await store.put(cls.log_key(digest), log if isinstance(log, bytes) else log.read_bytes())
        if containerfile_text is not None:
            await store.put(cls.containerfile_key(digest), containerfile_text.encode())
        # Off the event loop: hashing a few hundred MB would stall the builder's consumer
        # heartbeats long enough to be thrown out of its group.
        archive_digest, size = await asyncio.to_thread(digest_file, archive)
        info = {"digest": archive_digest, "size": size}
        await store.put(cls.info_key(digest), json.dumps(info).encode())
        await store.put(cls.archive_key(digest), archive)

    @classmethod
    async def exists(cls, store: ObjectStore, digest: str) -> bool:
        """Whether a complete, checkable artifact is stored (an archive without its digest
        record, as older builders wrote, counts as absent so that it is rebuilt)."""
        return await store.exists(cls.archive_key(digest)) and await store.exists(
            cls.info_key(digest)
        )

    @classmethod
    async def recorded_archive(cls, store: ObjectStore, digest: str) -> tuple[str, int] | None:
        """``(digest, size)`` of the archive as the builder published it; ``None`` when the
        record is missing or unreadable (then the archive cannot be checked)."""
        try:
            info = json.loads(await store.get(cls.info_key(digest)))
            recorded, size = info["digest"], info["size"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(recorded, str) or not _DIGEST_RE.match(recorded):
            return None
        if not isinstance(size, int):
            return None
        return recorded, size

    @classmethod
    def check_archive(cls, digest: str, archive: Path, recorded: tuple[str, int]) -> None:
        """Raise ``ArchiveMismatch`` unless ``archive`` holds the bytes recorded at publish.

        Called before unpacking: a tar is code (its modules run in every step of the
        environment), so bytes that are not the builder's must never reach ``unpack``.
        """
        actual, size = digest_file(archive)
        if (actual, size) != recorded:
            raise ArchiveMismatch(
                f"environment {digest}: the downloaded {ARCHIVE_NAME} ({actual}, {size} bytes) "
                f"does not match the archive the image builder published ({recorded[0]}, "
                f"{recorded[1]} bytes); it was changed or damaged in the datastore after the "
                "build and is not used: have the operator restore it, or remove "
                f"{cls.PREFIX}/{digest_hex(digest)}/ and the environment's ready record so "
                "that the image builder builds it again"
            )
