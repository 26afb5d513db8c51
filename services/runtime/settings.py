"""Settings shared by every service, read from ``HEADRACE_*`` environment variables.

One settings object is built in each service's ``__main__`` and passed down; nothing below
reads ``os.environ`` itself, so tests build settings in code with a unique topic prefix and a
fresh database.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RuntimeSettings", "default_home"]


def default_home() -> Path:
    """The state directory used when ``HEADRACE_HOME`` is not set."""
    return Path.home() / ".headrace"


class RuntimeSettings(BaseSettings):
    """Where the broker, the database and the shared working areas are.

    Why one class for all services: every service needs the same connection facts, and a
    service-specific subclass adds only its own knobs (``StepRunnerSettings`` adds the compute
    target, for example).
    """

    model_config = SettingsConfigDict(env_prefix="HEADRACE_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/headrace"
    topic_prefix: str = "headrace."
    topic_partitions: int = Field(default=8, ge=1)
    home: Path = Field(default_factory=default_home)
    scratch_dir: Path | None = None
    cache_dir: Path | None = None
    log_level: str = "info"
    log_format: str = "console"
    consumer_session_timeout_ms: int = 6000
    #: how long the broker may hold an empty fetch. The embedded broker (Tansu) holds it this
    #: long even when data arrives, so it bounds every hop's latency; idle consumers poll at
    #: this rate.
    consumer_fetch_max_wait_ms: int = Field(default=5, ge=0)
    #: the fetch wait of a consumer idle for about a second (see ``Consumer``)
    consumer_idle_fetch_wait_ms: int = Field(default=100, ge=0)
    db_pool_max: int = 4
    #: how long a starting service waits for the broker and the database to answer
    start_timeout_seconds: float = Field(default=120.0, gt=0)
    #: the HMAC key that signs internal events (``services/runtime/signing.py``); unset:
    #: nothing is signed or checked. The embedded stack generates one per installation.
    event_key: SecretStr | None = None

    @property
    def event_key_bytes(self) -> bytes | None:
        """The signing key as bytes, or ``None`` when events are not signed."""
        return None if self.event_key is None else self.event_key.get_secret_value().encode()

    @property
    def scratch(self) -> Path:
        """The run working area shared by data mounter, runners and uploader."""
        return self.scratch_dir or self.home / "scratch"

    @property
    def cache(self) -> Path:
        """Node-local caches (materialised snapshots)."""
        return self.cache_dir or self.home / "cache"
