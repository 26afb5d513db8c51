"""Build per-step Python environments: lock, digest, install, pack, publish.

The flow is ``lock`` (uv resolves the definition to exact versions with hashes) ->
``environment_digest`` (names the result by what was resolved, not by the definition's name) ->
``build`` (installs the lock into a plain ``--target`` directory) -> ``pack`` -> ``publish``.
Runners never talk to a package index: they download the archive (``EnvironmentCache``) and put
the unpacked directory on ``PYTHONPATH``. A ``--target`` directory instead of a venv because a
venv records its base interpreter's absolute path and does not move between machines, while a
``--target`` tree only needs an interpreter of the same version and platform, which the digest
covers.

Every subprocess is started with ``asyncio.create_subprocess_exec`` and an argument list: no
requirement text ever reaches a shell.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contracts.environment import EnvironmentDefinition
from contracts.snapshot import digest_bytes
from services.runtime.env_artifacts import (
    ARCHIVE_NAME,
    EnvironmentArtifacts,
    UnsafeArchive,
    digest_hex,
    pack,
    unpack,
)
from services.runtime.errors import PermanentError

__all__ = [
    "ARCHIVE_NAME",
    "DEFAULT_BASE_IMAGE",
    "ENVS_ROOT_IN_IMAGE",
    "BuildFailed",
    "EnvironmentArtifacts",
    "LockResult",
    "UnsafeArchive",
    "buildah_build",
    "containerfile",
    "digest_hex",
    "environment_digest",
    "lock",
    "pack",
    "unpack",
]

ENVS_ROOT_IN_IMAGE = "/opt/headrace/envs"

_MESSAGE_LIMIT = 4000
_LOG_TAIL = 4000


class BuildFailed(PermanentError):
    """Locking or installing an environment failed; the message carries uv's explanation."""


@dataclass(frozen=True)
class LockResult:
    """The resolved requirements (``==`` pins with ``--hash`` lines) and the lock's Python."""

    locked: str
    python_version: str


def _trim(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """Head and tail of ``text``: uv states the failure first and the reasons after it."""
    text = text.strip()
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n...\n{text[-half:]}"


def _uv_env(cache_dir: Path | None) -> dict[str, str]:
    """The subprocess environment: ours, with uv's own settings pinned.

    ``UV_CACHE_DIR`` is explicit so the cache stays on the build directory's filesystem (uv
    hard-links from it); pip's configuration does not apply to uv, so nothing else leaks in.
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env["UV_CACHE_DIR"] = str(cache_dir)
    env["UV_NO_PROGRESS"] = "1"
    env.pop("UV_SYSTEM_PYTHON", None)
    return env


def _python_minor(python_version: str) -> str:
    parts = python_version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(f"python version {python_version!r} must look like 3.11 or 3.11.7")
    return f"{parts[0]}.{parts[1]}"


async def lock(
    defn: EnvironmentDefinition,
    python_version: str,
    workdir: Path,
    uv: Path,
    cache_dir: Path | None = None,
) -> LockResult:
    """Resolve ``defn`` with ``uv pip compile --generate-hashes`` for ``python_version``.

    The requirements go through a file in ``workdir`` (not argv, not a shell). A resolver
    failure raises ``BuildFailed`` whose message is uv's own explanation ("No solution found
    ... because ..."), which is what a user needs to fix the definition.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    requirements = workdir / "requirements.in"
    requirements.write_text("".join(f"{line}\n" for line in defn.pip_requirements))
    proc = await asyncio.create_subprocess_exec(
        str(uv),
        "pip",
        "compile",
        "--generate-hashes",
        "--python-version",
        _python_minor(python_version),
        "--no-header",
        "--no-annotate",
        "--no-config",
        "--quiet",
        str(requirements),
        cwd=str(workdir),
        env=_uv_env(cache_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BuildFailed(
            f"resolving environment {defn.name!r} (version {defn.version}) failed:\n"
            + _trim(err.decode(errors="replace"))
        )
    return LockResult(locked=out.decode(), python_version=python_version)


def environment_digest(
    locked: str, python_version: str, env_vars: dict[str, str], platform_tag: str
) -> str:
    """The environment's identity: the lock with its hashes, Python, variables, platform.

    The name is deliberately absent: one name resolved again after an upstream release gets a
    new digest, and two names that resolve identically share the built artifact.
    """
    lines = [line.rstrip() for line in locked.strip().splitlines()]
    canonical = json.dumps(
        {
            "version": 1,
            "locked": lines,
            "python": python_version,
            "env_vars": dict(sorted(env_vars.items())),
            "platform": platform_tag,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return digest_bytes(canonical)


async def build(
    locked: str,
    dest: Path,
    python: Path,
    uv: Path,
    cache_dir: Path,
    log: Path,
    *,
    compile_bytecode: bool = True,
) -> None:
    """Install the lock into ``dest`` (a ``--target`` tree) for the interpreter ``python``.

    ``--no-deps`` because the lock already lists every dependency, and ``--require-hashes`` so
    that what is installed is exactly what the digest names. Bytecode is compiled at build
    time because the unpacked tree is shared and read by many steps. uv's output is appended
    to ``log``; a failure raises ``BuildFailed`` with the log's tail. Compiling costs about 3 s
    per numpy + scikit-learn build and saves about 1 s on every step start where bytecode
    cannot be written (``PYTHONDONTWRITEBYTECODE``, read-only trees).
    """
    dest.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    lock_file = dest.parent / f".{dest.name}.requirements.lock"
    lock_file.write_text(locked)
    args = [
        str(uv),
        "pip",
        "install",
        "--target",
        str(dest),
        "--python",
        str(python),
        "--require-hashes",
        "--no-deps",
        "--no-config",
        "-r",
        str(lock_file),
    ]
    if compile_bytecode:
        args.append("--compile-bytecode")
    try:
        with log.open("ab") as out:
            out.write(("$ " + " ".join(args) + "\n").encode())
            out.flush()
            proc = await asyncio.create_subprocess_exec(
                *args,
                env=_uv_env(cache_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            code = await proc.wait()
    finally:
        lock_file.unlink(missing_ok=True)
    (dest / ".lock").unlink(missing_ok=True)  # uv's own lock file in --target trees
    if code != 0:
        tail = log.read_bytes()[-_LOG_TAIL:].decode(errors="replace")
        raise BuildFailed(f"installing the environment failed (uv exit {code}):\n{tail.strip()}")


def _quote(value: str) -> str:
    """A Containerfile double-quoted string (ENV/LABEL values): ``\\``, ``"`` and ``$`` escaped.

    A line break cannot be written in an ENV value at all, so it is refused rather than
    silently changed.
    """
    if "\n" in value or "\r" in value:
        raise ValueError(f"value {value!r} has a line break, which a Containerfile cannot hold")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


#: the Containerfile's FROM when the environment names no base image
DEFAULT_BASE_IMAGE = "python:3.11-slim"


def containerfile(
    defn: EnvironmentDefinition,
    digest: str,
    locked_name: str = "requirements.lock",
    env_dir: str = "env",
    base: str | None = None,
) -> str:
    """An OCI Containerfile putting the built ``--target`` tree on ``PYTHONPATH``.

    The build context holds ``env_dir`` (the unpacked tree) and ``locked_name``. ``BASE`` is
    ``base``, else the definition's ``base_image`` (``Environment.docker.base_image``), else
    ``python:3.11-slim``; it must provide the Python the environment was built for.
    """
    base = base or defn.base_image or DEFAULT_BASE_IMAGE
    hexd = digest_hex(digest)
    target = f"{ENVS_ROOT_IN_IMAGE}/{hexd}"
    lines = [
        "# Generated by headrace's image builder; do not edit.",
        f"ARG BASE={base}",
        "FROM ${BASE}",
        f"COPY {env_dir}/ {target}/",
        f"COPY {locked_name} {target}.requirements.lock",
        f"ENV PYTHONPATH={_quote(target)}",
    ]
    for key, value in sorted(defn.env_vars.items()):
        lines.append(f"ENV {key}={_quote(value)}")
    lines.append(
        "LABEL "
        f"org.headrace.environment.digest={_quote(digest)} "
        f"org.headrace.environment.name={_quote(defn.name)} "
        f"org.headrace.environment.version={_quote(defn.version)}"
    )
    return "\n".join(lines) + "\n"


async def buildah_build(context_dir: Path, tag: str, base: str = "scratch") -> str | None:
    """Build ``context_dir/Containerfile`` with buildah (no daemon); return the image id.

    ``None`` when buildah is not installed. vfs storage and chroot isolation because neither
    overlay mounts nor user namespaces can be assumed inside a builder's container.
    """
    buildah = shutil.which("buildah")
    if buildah is None:
        return None
    with tempfile.NamedTemporaryFile(prefix="headrace-iid-", delete=False) as f:
        iidfile = Path(f.name)
    try:
        proc = await asyncio.create_subprocess_exec(
            buildah,
            "bud",
            "--storage-driver",
            "vfs",
            "--isolation",
            "chroot",
            "--build-arg",
            f"BASE={base}",
            "--iidfile",
            str(iidfile),
            "-t",
            tag,
            "-f",
            str(context_dir / "Containerfile"),
            str(context_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise BuildFailed(
                f"buildah bud failed (exit {proc.returncode}):\n"
                + _trim(out.decode(errors="replace"))
            )
        return iidfile.read_text().strip() or None
    finally:
        iidfile.unlink(missing_ok=True)
