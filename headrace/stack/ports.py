"""Ports on the loopback interface."""

from __future__ import annotations

import socket
import time

__all__ = ["free_port", "port_open", "wait_for_port"]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float, alive: object = None) -> bool:
    """Wait until ``port`` accepts connections; False on timeout (or when ``alive()`` is
    false, meaning the process that should listen has died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if callable(alive) and not alive():
            return False
        time.sleep(0.02)
    return False
