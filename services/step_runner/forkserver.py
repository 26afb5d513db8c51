"""A pre-forked launcher for step processes: fork a warm interpreter instead of starting one.

Starting Python costs tens of milliseconds of CPU per step; forking this small process costs
about one. The runner starts it once (``python forkserver.py``) and talks JSON lines over its
stdin/stdout:

- request ``{"argv": [LEASE, SCRIPT, ARGS...], "cwd", "env", "stdout", "stderr"}`` ->
  ``{"pid": PID}`` once forked;
- when a child ends: ``{"exit": PID, "code": CODE}`` (negative: killed by that signal).

The child becomes a session leader (so killing its group kills everything it started),
redirects its output to the given files and runs the script through ``boot.main``, exactly
as a freshly started ``boot.py`` would; it ends with normal interpreter shutdown (atexit
handlers, non-daemon threads, flushed buffers). Standard library only, single-threaded.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
from typing import Any

import boot  # type: ignore[import-not-found]  # beside this file (run by path); pre-imported

__all__ = ["serve"]


def _child(req: dict[str, Any], inherited: list[int]) -> None:
    """In the forked child: become the step process, then run the script (does not return)."""
    os.setsid()
    for fd in inherited:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for src, dst in ((devnull, 0), (out, 1), (err, 2)):
        os.dup2(src, dst)
        os.close(src)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own standard streams
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    boot.main(req["argv"])  # sets sys.path[0] to the script's directory, as python would


def serve() -> dict[str, Any] | None:
    """The parent's loop; returns a request only in a freshly forked child."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "req")
    sel.register(wake_r, selectors.EVENT_READ, "chld")
    reader = os.fdopen(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    buf = b""
    out = sys.stdout

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    while True:
        for key, _ in sel.select():
            if key.data == "chld":
                os.read(wake_r, 512)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
                continue
            chunk = reader.read(65536)
            if not chunk:
                return None  # the runner went away
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    sel.close()
                    req["_inherited"] = [wake_r, wake_w]
                    return dict(req)
                send({"pid": pid})


if __name__ == "__main__":
    request = serve()
    if request is not None:
        _child(request, request.pop("_inherited"))
