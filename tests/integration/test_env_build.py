"""Per-step environments end to end with real uv and the real package index.

Lock -> digest -> build -> pack -> unpack, then a real interpreter imports from the unpacked
tree; resolver failures carry uv's explanation; the runner cache downloads once, evicts least
recently used past its budget and never evicts what is in use. Small pure-Python packages keep
it fast.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import platform
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from contracts.environment import EnvironmentDefinition
from services.image_builder.build import (
    ARCHIVE_NAME,
    BuildFailed,
    EnvironmentArtifacts,
    UnsafeArchive,
    build,
    buildah_build,
    containerfile,
    digest_hex,
    environment_digest,
    lock,
    pack,
    unpack,
)
from services.runtime.env_artifacts import ARCHIVE_INFO, ArchiveMismatch
from services.runtime.storage import DatastoreRecord, ObjectStore, open_datastore
from services.step_runner.envcache import EnvironmentCache, EnvironmentUnavailable

PYTHON = Path(sys.executable)
UV = Path(sys.executable).parent / "uv"
PY_VERSION = platform.python_version()
PLATFORM = sysconfig.get_platform()


class CountingStore(ObjectStore):
    """A real local datastore that counts downloads (cache hits must not reach it)."""

    def __init__(self, root: Path) -> None:
        super().__init__(DatastoreRecord(name="t", kind="local", config={"root": str(root)}))
        self.downloads = 0

    async def download(self, key: str, dest: Path) -> int:
        self.downloads += 1
        await asyncio.sleep(0.05)  # widen the window in which concurrent callers overlap
        return await super().download(key, dest)


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


def _digest(locked: str, env_vars: dict[str, str] | None = None) -> str:
    return environment_digest(locked, PY_VERSION, env_vars or {}, PLATFORM)


async def _built_archive(
    defn: EnvironmentDefinition, work: Path, uv_cache: Path
) -> tuple[str, str, Path]:
    """(digest, locked text, archive) of ``defn`` built under ``work``."""
    locked = (await lock(defn, PY_VERSION, work / "lock", UV, uv_cache)).locked
    digest = _digest(locked, defn.env_vars)
    await build(locked, work / "env", PYTHON, UV, uv_cache, work / "build.log")
    archive = work / ARCHIVE_NAME
    pack(work / "env", archive)
    return digest, locked, archive


def _import_six(tree: Path) -> str:
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); import six; print(six.__version__)"
    out = subprocess.run(
        [str(PYTHON), "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


async def test_lock_build_pack_unpack_imports_from_the_tree(tmp_path: Path, uv_cache: Path) -> None:
    """Lock pins with hashes; build (logged), pack and unpack give a tree Python imports from."""
    defn = EnvironmentDefinition(name="small", pip_requirements=["six==1.16.0", "tomli-w"])
    digest, locked, archive = await _built_archive(defn, tmp_path, uv_cache)

    assert "six==1.16.0" in locked
    assert "--hash=sha256:" in locked
    assert "tomli-w==" in locked
    assert digest.startswith("sha256:")
    assert (tmp_path / "build.log").read_text().strip()
    assert not (tmp_path / "env" / ".lock").exists()  # uv's lock file is not shipped

    size = unpack(archive, tmp_path / "unpacked")
    assert size > 0
    assert _import_six(tmp_path / "unpacked") == "1.16.0"


async def test_digest_is_stable_and_follows_every_input(tmp_path: Path, uv_cache: Path) -> None:
    """Name and requirement order leave the digest alone; a pin, hash, Python version, variable
    or platform changes it."""
    defn = EnvironmentDefinition(name="a", pip_requirements=["six==1.16.0", "attrs"])
    locked1 = (await lock(defn, PY_VERSION, tmp_path / "1", UV, uv_cache)).locked
    renamed = EnvironmentDefinition(name="b", pip_requirements=["attrs", "six==1.16.0"])
    locked2 = (await lock(renamed, PY_VERSION, tmp_path / "2", UV, uv_cache)).locked
    assert _digest(locked1) == _digest(locked2)

    changed = EnvironmentDefinition(name="a", pip_requirements=["six==1.15.0", "attrs"])
    locked3 = (await lock(changed, PY_VERSION, tmp_path / "3", UV, uv_cache)).locked
    assert _digest(locked3) != _digest(locked1)

    base = _digest(locked1)
    assert environment_digest(locked1, "3.11.0", {}, PLATFORM) != base
    assert environment_digest(locked1, PY_VERSION, {"A": "1"}, PLATFORM) != base
    assert environment_digest(locked1, PY_VERSION, {}, "macosx-14.0-arm64") != base
    # A changed hash under the same pins (an upstream re-release) changes the digest too.
    assert _digest(locked1.replace("--hash=sha256:1", "--hash=sha256:2", 1)) != base


async def test_unknown_package_fails_with_uvs_explanation(tmp_path: Path, uv_cache: Path) -> None:
    """Locking an unknown package fails with uv's explanation, the package and the environment."""
    defn = EnvironmentDefinition(name="bad", pip_requirements=["headrace-no-such-pkg-zzz"])
    with pytest.raises(BuildFailed) as info:
        await lock(defn, PY_VERSION, tmp_path, UV, uv_cache)
    message = str(info.value)
    assert "No solution found" in message
    assert "headrace-no-such-pkg-zzz" in message
    assert "'bad'" in message


async def test_version_conflict_fails_with_uvs_explanation(tmp_path: Path, uv_cache: Path) -> None:
    """Locking two conflicting pins fails with uv's explanation naming both."""
    defn = EnvironmentDefinition(name="clash", pip_requirements=["six==1.16.0", "six==1.15.0"])
    with pytest.raises(BuildFailed) as info:
        await lock(defn, PY_VERSION, tmp_path, UV, uv_cache)
    message = str(info.value)
    assert "No solution found" in message
    assert "six==1.16.0" in message
    assert "six==1.15.0" in message


async def test_a_tampered_lock_fails_the_install(tmp_path: Path, uv_cache: Path) -> None:
    """A lock whose hash does not match the package fails the install with uv's exit."""
    defn = EnvironmentDefinition(name="s", pip_requirements=["six==1.16.0"])
    locked = (await lock(defn, PY_VERSION, tmp_path, UV, uv_cache)).locked
    bad = "six==1.16.0 --hash=sha256:" + "0" * 64 + "\n"
    with pytest.raises(BuildFailed, match="uv exit"):
        await build(bad, tmp_path / "env", PYTHON, UV, uv_cache, tmp_path / "build.log")
    assert "six" in locked


def test_containerfile_names_the_digest_and_quotes_variables() -> None:
    """The Containerfile copies the tree to its digest's path, labels the digest and quotes
    variables; a variable with a line break is refused."""
    defn = EnvironmentDefinition(
        name="cf", pip_requirements=["six"], env_vars={"OMP_NUM_THREADS": "1", "Q": 'a "b" $c'}
    )
    digest = "sha256:" + "ab" * 32
    text = containerfile(defn, digest)
    target = f"/opt/headrace/envs/{digest_hex(digest)}"
    assert text.splitlines()[1].startswith("ARG BASE=")
    assert "FROM ${BASE}" in text
    assert f"COPY env/ {target}/" in text
    assert f'ENV PYTHONPATH="{target}"' in text
    assert 'ENV OMP_NUM_THREADS="1"' in text
    assert 'ENV Q="a \\"b\\" \\$c"' in text
    assert f'org.headrace.environment.digest="{digest}"' in text
    with pytest.raises(ValueError, match="line break"):
        containerfile(
            EnvironmentDefinition(name="nl", pip_requirements=[], env_vars={"X": "a\nb"}), digest
        )


def test_containerfile_builds_on_the_environments_base_image() -> None:
    """An environment's recorded base image is the Containerfile's FROM; without one the
    builder's default; a base image with a space is refused; older keys do not change."""
    digest = "sha256:" + "cd" * 32
    own = EnvironmentDefinition(name="b", pip_requirements=[], base_image="python:3.11-bookworm")
    assert "ARG BASE=python:3.11-bookworm" in containerfile(own, digest)
    plain = EnvironmentDefinition(name="b", pip_requirements=[])
    assert "ARG BASE=python:3.11-slim" in containerfile(plain, digest)
    assert (
        plain.key
        == "b@1:"
        + hashlib.sha256(
            json.dumps(
                {"env_vars": {}, "name": "b", "pip_requirements": [], "version": "1"},
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
    )
    with pytest.raises(ValueError, match="image reference"):
        EnvironmentDefinition(name="b", pip_requirements=[], base_image="bad image")


def _crafted_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("fine.py")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"x=1"))
        member.size = len(data) if member.isreg() else 0
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_unpack_refuses_members_escaping_the_destination(tmp_path: Path, kind: str) -> None:
    """Unpack refuses ../, absolute, symlink and hardlink members escaping the destination."""
    if kind == "dotdot":
        member = tarfile.TarInfo("../evil")
    elif kind == "absolute":
        member = tarfile.TarInfo(str(tmp_path / "abs-evil"))
    else:
        member = tarfile.TarInfo("link")
        member.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        member.linkname = "../../etc/passwd" if kind == "symlink" else "/etc/passwd"
    archive = tmp_path / "evil.tar"
    _crafted_tar(archive, member, b"pwned")
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchive, match="unsafe"):
        unpack(archive, dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "abs-evil").exists()


# -- the runner's cache ---------------------------------------------------------------------


async def _publish_fake(store: ObjectStore, tmp: Path, name: str, size: int) -> str:
    """Publish a tiny environment (one module of ``size`` bytes) and return its digest."""
    tree = tmp / f"tree-{name}"
    tree.mkdir()
    (tree / f"{name}.py").write_text(f"VALUE = {name!r}\n" + "#" * size)
    archive = tmp / f"{name}.tar"
    pack(tree, archive)
    digest = _digest(f"{name}==1 --hash=sha256:{'0' * 64}")
    await EnvironmentArtifacts.publish(store, digest, archive, f"{name}==1\n", b"log")
    return digest


async def test_publish_writes_the_archive_last_and_exists_checks_it(tmp_path: Path) -> None:
    """Publish writes lock, log and Containerfile before the archive; exists checks the archive."""
    store = CountingStore(tmp_path / "store")
    digest = "sha256:" + "cd" * 32
    assert not await EnvironmentArtifacts.exists(store, digest)
    order: list[str] = []
    original = store.put

    async def recording_put(key: str, data: bytes | Path) -> None:
        order.append(key.rsplit("/", 1)[1])
        await original(key, data)

    store.put = recording_put  # type: ignore[method-assign]
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"tar")
    await EnvironmentArtifacts.publish(store, digest, archive, "six==1\n", b"log", "FROM x\n")
    assert order == ["requirements.lock", "build.log", "Containerfile", ARCHIVE_INFO, ARCHIVE_NAME]
    assert await EnvironmentArtifacts.exists(store, digest)
    assert EnvironmentArtifacts.archive_key(digest) == (
        f"environments/{digest_hex(digest)}/{ARCHIVE_NAME}"
    )


async def test_cache_miss_then_hit_without_the_store(tmp_path: Path, uv_cache: Path) -> None:
    """The first ensure downloads and unpacks; later ones, also from a restarted cache, reuse it."""
    store = CountingStore(tmp_path / "store")
    defn = EnvironmentDefinition(name="small", pip_requirements=["six==1.16.0"])
    digest, locked, archive = await _built_archive(defn, tmp_path / "build", uv_cache)
    await EnvironmentArtifacts.publish(store, digest, archive, locked, tmp_path / "build/build.log")

    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    first = await cache.ensure(digest, store)
    assert store.downloads == 1
    assert first == tmp_path / "cache" / digest_hex(digest)
    assert _import_six(first) == "1.16.0"

    second = await cache.ensure(digest, store)
    assert second == first
    assert store.downloads == 1
    # A fresh cache object on the same directory (a restarted runner) hits too.
    again = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    assert await again.ensure(digest, store) == first
    assert store.downloads == 1
    assert not list((tmp_path / "cache" / ".tmp").iterdir())


async def test_cache_missing_artifact_names_the_digest(tmp_path: Path) -> None:
    """A digest with no artifact fails naming the digest and leaves nothing in the cache."""
    store = open_datastore(
        DatastoreRecord(name="t", kind="local", config={"root": str(tmp_path / "s")})
    )
    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=10**6)
    digest = "sha256:" + "ef" * 32
    with pytest.raises(EnvironmentUnavailable, match=digest):
        await cache.ensure(digest, store)
    assert not (tmp_path / "cache" / digest_hex(digest)).exists()
    assert not list((tmp_path / "cache" / ".tmp").iterdir())


async def test_cache_refuses_an_archive_changed_after_publishing(tmp_path: Path) -> None:
    """An archive whose bytes differ from the digest recorded when it was published (here a
    valid tar with other content) is refused before unpacking: nothing lands in the cache."""
    store = CountingStore(tmp_path / "store")
    digest = await _publish_fake(store, tmp_path, "good", 100)
    evil = tmp_path / "tree-evil"
    evil.mkdir()
    (evil / "good.py").write_text("import os; os.system('echo owned')\n")
    pack(evil, tmp_path / "evil.tar")
    assert store.local_root is not None
    archive = store.local_root / EnvironmentArtifacts.archive_key(digest)
    archive.write_bytes((tmp_path / "evil.tar").read_bytes())
    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    with pytest.raises(ArchiveMismatch, match=digest) as info:
        await cache.ensure(digest, store)
    assert "does not match" in str(info.value)
    assert not cache.path(digest).exists()
    assert cache.entries() == []
    assert not list((tmp_path / "cache" / ".tmp").iterdir())


async def test_cache_refuses_an_archive_without_a_recorded_digest(tmp_path: Path) -> None:
    """An archive with no digest record (deleted, or never written) cannot be checked, so it
    is not unpacked; the error names the missing record."""
    store = CountingStore(tmp_path / "store")
    digest = await _publish_fake(store, tmp_path, "bare", 100)
    assert store.local_root is not None
    (store.local_root / EnvironmentArtifacts.key(digest, ARCHIVE_INFO)).unlink()
    assert not await EnvironmentArtifacts.exists(store, digest)  # the builder would rebuild
    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    with pytest.raises(EnvironmentUnavailable, match=ARCHIVE_INFO):
        await cache.ensure(digest, store)
    assert not cache.path(digest).exists()


async def test_cache_evicts_lru_but_never_what_is_in_use(tmp_path: Path) -> None:
    """Past its budget the cache evicts the least recently used tree not in use; a tree over
    the budget by itself is kept."""
    store = CountingStore(tmp_path / "store")
    a, b, c = [await _publish_fake(store, tmp_path, n, 2000) for n in ("a", "b", "c")]
    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=5000)  # room for two

    async with cache.use(a, store) as path_a:
        await cache.ensure(b, store)
        await asyncio.sleep(0.02)  # distinct last-used times
        await cache.ensure(c, store)  # over budget: a is LRU but in use, so b goes
        assert path_a.is_dir()
        assert not cache.path(b).exists()
        assert cache.path(c).is_dir()
        assert cache.total_bytes() <= 5000

    await asyncio.sleep(0.02)
    await cache.ensure(b, store)  # a is free now and least recently used
    assert not cache.path(a).exists()
    assert cache.path(b).is_dir()
    assert cache.path(c).is_dir()
    assert store.downloads == 4

    tiny = EnvironmentCache(tmp_path / "cache", budget_bytes=1)
    only = await tiny.ensure(c, store)  # over budget by itself: kept, the others go
    assert only.is_dir()
    assert [e.digest_hex for e in tiny.entries()] == [digest_hex(c)]


async def test_cache_concurrent_ensure_downloads_once(tmp_path: Path) -> None:
    """Eight concurrent ensures of one digest download it once and return one path."""
    store = CountingStore(tmp_path / "store")
    digest = await _publish_fake(store, tmp_path, "con", 100_000)
    cache = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    paths = await asyncio.gather(*(cache.ensure(digest, store) for _ in range(8)))
    assert len(set(paths)) == 1
    assert store.downloads == 1
    assert cache.downloads == 1


async def test_cache_two_processes_racing_share_one_tree(tmp_path: Path) -> None:
    """Two caches (as two runner processes would) fetch at once; the rename loser adopts."""
    store = CountingStore(tmp_path / "store")
    digest = await _publish_fake(store, tmp_path, "race", 50_000)
    one = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    two = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    p1, p2 = await asyncio.gather(one.ensure(digest, store), two.ensure(digest, store))
    assert p1 == p2
    assert (p1 / "race.py").is_file()
    assert store.downloads == 2  # each "process" fetched; one rename lost gracefully
    assert not list((tmp_path / "cache" / ".tmp").iterdir())
    meta = json.loads((tmp_path / "cache" / ".meta" / f"{digest_hex(digest)}.json").read_text())
    assert meta["size"] > 50_000


async def test_cache_eviction_skips_trees_held_by_another_process(tmp_path: Path) -> None:
    """Eviction skips a tree another cache holds in use and evicts it once released."""
    store = CountingStore(tmp_path / "store")
    a = await _publish_fake(store, tmp_path, "a", 3000)
    b = await _publish_fake(store, tmp_path, "b", 3000)
    holder = EnvironmentCache(tmp_path / "cache", budget_bytes=10**9)
    evicter = EnvironmentCache(tmp_path / "cache", budget_bytes=3500)
    async with holder.use(a, store):
        await asyncio.sleep(0.02)
        await evicter.ensure(b, store)  # over budget, but a is held by the other cache
        assert holder.path(a).is_dir()
    assert await evicter.evict() == [digest_hex(a)]


async def test_buildah_builds_the_containerfile_from_scratch(
    tmp_path: Path, uv_cache: Path
) -> None:
    """buildah builds the Containerfile: the image has PYTHONPATH, the quoted variable and the
    digest label."""
    defn = EnvironmentDefinition(
        name="img", pip_requirements=["six==1.16.0"], env_vars={"Q": 'a "b" $c \\d'}
    )
    digest, locked, archive = await _built_archive(defn, tmp_path / "build", uv_cache)
    ctx = tmp_path / "ctx"
    unpack(archive, ctx / "env")
    (ctx / "requirements.lock").write_text(locked)
    (ctx / "Containerfile").write_text(containerfile(defn, digest))
    tag = f"localhost/headrace-test-env:{digest_hex(digest)[:12]}"
    image = await buildah_build(ctx, tag, base="scratch")
    assert image
    try:
        out = subprocess.run(
            ["buildah", "--storage-driver", "vfs", "inspect", "--type", "image", tag],
            capture_output=True,
            text=True,
            check=True,
        )
        config = json.loads(out.stdout)["OCIv1"]["config"]
        assert f"PYTHONPATH=/opt/headrace/envs/{digest_hex(digest)}" in config["Env"]
        assert 'Q=a "b" $c \\d' in config["Env"]
        assert config["Labels"]["org.headrace.environment.digest"] == digest
    finally:
        subprocess.run(["buildah", "--storage-driver", "vfs", "rmi", tag], capture_output=True)
