"""Read-only FUSE mounts of remote datastores with rclone.

Why rclone: a mount lets a step read a large object without first copying it, and read only
the parts it needs; rclone is in Debian, speaks S3 and Azure Blob, and streams reads with
read-ahead. Why a mount per input: its lifetime is the attempt's, so the runner can unmount
exactly what the attempt used when the step ends.

Credentials: rclone gets its remote's configuration through ``RCLONE_CONFIG_<NAME>_*``
variables in *its own* environment only (never argv, which any user can read in ``ps``; never
a config file; never a log line). For Azure, rclone is not given the account key at all: it
gets a read+list SAS limited to the container and to the step's lifetime, signed here. That is
also how it reaches emulators: rclone's ``endpoint`` option is a host suffix and cannot name
Azurite's account-in-path URL, but a SAS URL can.

The mount runs as an rclone daemon (``--daemon``): it must outlive this service's handler and
survive a restart of the data mounter while the step reads. It ends when the mount point is
unmounted (``unmount_under``), which the step runner does after the step process exits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.runtime.errors import PermanentError
from services.runtime.mounts import is_fuse_mount, unmount
from services.runtime.storage import SECRET_FIELDS, DatastoreRecord

__all__ = ["FuseMounter", "MountError", "MountOptions"]

_log = structlog.get_logger("headrace.data_mounter.fuse")

#: The remote's name in rclone's environment configuration.
_REMOTE = "HEADRACE"
#: Variables of the service that rclone must not inherit: the service's own secrets, other
#: rclone configuration, and ``AWS_CA_BUNDLE`` (rclone then builds a custom TLS transport that
#: breaks plain-http endpoints, per the ecosystem notes).
_DROP_PREFIXES = ("HEADRACE_", "RCLONE_")
_DROP = frozenset({"AWS_CA_BUNDLE"})


class MountError(PermanentError):
    """A mount could not be made live; the caller falls back to a copy with this reason."""


@dataclass(frozen=True)
class MountOptions:
    """rclone VFS options.

    ``--vfs-cache-mode off`` (the default) streams reads straight from the store with
    ``buffer_size`` of read-ahead in memory per open file: no second copy on local disk, which
    is the point of mounting. ``full`` read a 200 MB object about 1.5x faster here (rclone
    fetches ranges in parallel into a disk cache) and suits random access, at the cost of that
    disk copy; its cache goes beside the mount point, inside scratch, so it ends with the
    attempt. Chunk sizes from 16M to 256M made no measurable difference (docs/datasets.md).
    """

    vfs_cache_mode: str = "off"
    buffer_size: str = "64M"
    read_chunk_size: str = "64M"
    read_chunk_size_limit: str = "512M"
    timeout_seconds: float = 30.0


def _azure_sas(account: str, key: str, container: str, expiry: dt.datetime) -> str:
    """A service SAS granting read and list on one container until ``expiry``: what rclone
    needs, and nothing more (no write, no other container, no account key)."""
    version = "2019-12-12"
    se = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    resource = f"/blob/{account}/{container}"
    # permissions, start, expiry, resource, identifier, IP, protocol, version, resource type,
    # snapshot time, then five response-header overrides: the 2018-11-09+ string-to-sign.
    to_sign = "\n".join(["rl", "", se, resource, "", "", "", version, "c", "", "", "", "", "", ""])
    sig = base64.b64encode(
        hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    return urllib.parse.urlencode({"sv": version, "sr": "c", "sp": "rl", "se": se, "sig": sig})


class FuseMounter:
    """Mount remote datastore paths read-only with rclone, when this machine can."""

    def __init__(self, log_dir: Path, options: MountOptions | None = None) -> None:
        self.options = options or MountOptions()
        self.log_dir = log_dir
        self._machine_reason: str | None = None
        self._probed = False

    def machine_reason(self) -> str | None:
        """Why this machine cannot mount at all, or ``None``. Probed once.

        Public so that tests expect the outcome this machine gives, not either outcome."""
        if not self._probed:
            self._probed = True
            if shutil.which("rclone") is None:
                self._machine_reason = "rclone is not installed"
            elif shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
                self._machine_reason = "fuse3 (fusermount3) is not installed"
            elif not os.access("/dev/fuse", os.R_OK | os.W_OK):
                self._machine_reason = "/dev/fuse is not available"
        return self._machine_reason

    def unsupported(self, record: DatastoreRecord) -> str | None:
        """Why ``record`` cannot be mounted here, or ``None`` if it can."""
        machine = self.machine_reason()
        if machine:
            return machine
        if record.kind == "s3":
            return None
        if record.kind == "azure_blob":
            cfg = record.config
            if not cfg.get("account_key") and not cfg.get("sas_token"):
                return "an Azure mount needs an account key or a SAS token in the datastore"
            return None
        return f"rclone mounts of {record.kind} datastores are not supported"

    def _remote(self, record: DatastoreRecord, expiry: dt.datetime) -> tuple[dict[str, str], str]:
        """rclone's environment configuration for ``record`` and the remote root
        (bucket or container plus the datastore's prefix)."""
        cfg = record.config
        env: dict[str, str] = {}
        name = f"RCLONE_CONFIG_{_REMOTE}_"
        prefix = str(cfg.get("prefix") or "").strip("/")
        if record.kind == "s3":
            endpoint = cfg.get("endpoint")
            path_style = cfg.get("path_style")
            env[name + "TYPE"] = "s3"
            env[name + "PROVIDER"] = "Other" if endpoint else "AWS"
            env[name + "REGION"] = str(cfg.get("region") or "us-east-1")
            if endpoint:
                env[name + "ENDPOINT"] = str(endpoint)
            env[name + "FORCE_PATH_STYLE"] = (
                "true" if (path_style if path_style is not None else bool(endpoint)) else "false"
            )
            if cfg.get("access_key_id"):
                env[name + "ACCESS_KEY_ID"] = str(cfg["access_key_id"])
                env[name + "SECRET_ACCESS_KEY"] = str(cfg["secret_access_key"])
                if cfg.get("session_token"):
                    env[name + "SESSION_TOKEN"] = str(cfg["session_token"])
            else:
                env[name + "ENV_AUTH"] = "true"  # the machine's own credentials
            root = str(cfg["bucket"])
        else:
            account, container = str(cfg["account_name"]), str(cfg["container"])
            endpoint = cfg.get("endpoint") or (
                "http://127.0.0.1:10000/devstoreaccount1"
                if cfg.get("use_emulator")
                else f"https://{account}.blob.core.windows.net"
            )
            if cfg.get("account_key"):
                sas = _azure_sas(account, str(cfg["account_key"]), container, expiry)
            else:
                sas = str(cfg["sas_token"]).lstrip("?")
            env[name + "TYPE"] = "azureblob"
            env[name + "SAS_URL"] = f"{str(endpoint).rstrip('/')}/{container}?{sas}"
            root = container
        return env, f"{root}/{prefix}" if prefix else root

    def _cache_args(self, mountpoint: Path) -> list[str]:
        """A private VFS cache per mount when caching is on: rclone's default directory is
        shared, and two mounts of one remote must not share it (rclone's own warning)."""
        if self.options.vfs_cache_mode == "off":
            return []
        return ["--cache-dir", str(mountpoint.parent / f".{mountpoint.name}.vfs")]

    def _environment(self, remote_env: dict[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _DROP and not k.startswith(_DROP_PREFIXES)
        }
        env["RCLONE_CONFIG"] = "/notfound"  # configuration in memory only, from the variables
        env.update(remote_env)
        return env

    def _redact(self, text: str, record: DatastoreRecord, remote_env: dict[str, str]) -> str:
        """rclone's log tail without any credential (config secrets, the SAS signature)."""
        text = re.sub(r"(sig|se|sv|sp|sr|st|skoid|sktid|skt|ske|sks|skv)=[^&\s\"']+", "", text)
        text = re.sub(r"\?[^\s\"']*", "?<query redacted>", text)
        secrets = [str(record.config[f]) for f in SECRET_FIELDS if record.config.get(f)]
        secrets += [v for k, v in remote_env.items() if k.endswith(("_KEY", "_TOKEN", "_URL"))]
        for s in secrets:
            if len(s) >= 4:
                text = text.replace(s, "***")
        return " ".join(text.split())[-400:]

    async def mount(
        self,
        record: DatastoreRecord,
        path: str,
        mountpoint: Path,
        *,
        probe: str | None,
        lifetime_seconds: float,
    ) -> None:
        """Mount ``path`` of the datastore (a prefix; ``""`` for its root) read-only at
        ``mountpoint``, and return once it is live: once ``probe`` (a name directly under
        the mount point) is visible through it, or the mount point lists.

        Raises ``MountError`` (after unmounting anything half-made) when it does not come up.
        """
        opts = self.options
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime_seconds + 3600)
        remote_env, root = self._remote(record, expiry)
        remote = (
            f"{_REMOTE.lower()}:{root}/{path.strip('/')}"
            if path.strip("/")
            else (f"{_REMOTE.lower()}:{root}")
        )
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.log_dir / f"{hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]}.log"
        log.touch(mode=0o600)
        argv = [
            "rclone",
            "mount",
            remote,
            str(mountpoint),
            "--read-only",
            "--daemon",
            "--daemon-wait",
            f"{int(opts.timeout_seconds)}s",
            "--vfs-cache-mode",
            opts.vfs_cache_mode,
            "--buffer-size",
            opts.buffer_size,
            "--vfs-read-chunk-size",
            opts.read_chunk_size,
            "--vfs-read-chunk-size-limit",
            opts.read_chunk_size_limit,
            "--dir-cache-time",
            "1h",  # the data is read-only for the step: no need to re-list
            "--attr-timeout",
            "1h",
            "--no-modtime",
            *self._cache_args(mountpoint),
            "--log-file",
            str(log),
            "--log-level",
            "NOTICE",
        ]
        env = self._environment(remote_env)
        started = time.monotonic()
        # stderr to the private log, not a pipe: the daemon inherits it, and a pipe would stay
        # open (and unread) for the mount's whole life.
        with log.open("ab") as err_out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err_out,
                start_new_session=True,
            )
        err = b""
        try:
            # The parent exits once the daemon reports the mount ready (``--daemon-wait``).
            async with asyncio.timeout(opts.timeout_seconds + 10):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            err = b"rclone did not report the mount ready"
        live = proc.returncode == 0 and await self._wait_live(
            mountpoint, probe, started + opts.timeout_seconds
        )
        if not live:
            await unmount(mountpoint)
            with contextlib.suppress(OSError):
                tail = log.read_text(errors="replace")[-2000:]
                err = (err.decode(errors="replace") + " " + tail).encode()
            reason = self._redact(err.decode(errors="replace"), record, remote_env)
            raise MountError(f"rclone mount failed: {reason or 'no output'}")
        _log.info(
            "fuse.mounted",
            datastore=record.name,
            path=path,
            mountpoint=str(mountpoint),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _wait_live(self, mountpoint: Path, probe: str | None, deadline: float) -> bool:
        """Whether the mount answers before ``deadline``: the kernel lists it as FUSE and a
        lookup through it reaches the store."""

        def answers() -> bool:
            if not is_fuse_mount(mountpoint):
                return False
            if probe is not None:
                return (mountpoint / probe).exists()
            os.listdir(mountpoint)
            return True

        while True:
            with contextlib.suppress(OSError):
                if await asyncio.to_thread(answers):
                    return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
