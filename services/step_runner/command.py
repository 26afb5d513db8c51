"""How a ``CommandStep``'s command becomes the processes a runner starts.

The command arrives as items (``{"kind": "literal" | "input" | "output" | "value", ...}``),
which are joined with spaces into one command line as Azure ML joins them: literal items are
the user's own text, and every substituted item (an input's or output's local path, a
parameter's value) is quoted, so it stays one word and can never be read as shell syntax.

The line is then split into words with POSIX quoting and started directly, without a shell;
only a line that uses shell syntax (pipes, redirection, ``&&``, ``;``, ``$VAR``, globs,
backquotes) is run by ``/bin/sh -c``. A runner never builds a shell string from values it
did not quote itself.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from contracts import events as ev
from services.runtime.scratch import AttemptDir
from services.step_runner.errors import StepStartError

__all__ = [
    "SHELL_CHARACTERS",
    "command_argv",
    "command_environment",
    "command_line",
    "command_words",
    "python_shim",
]

#: characters that mean the line needs a shell to mean what it says
SHELL_CHARACTERS = frozenset("|&;<>()$`*?[]{}~!#\n")

#: the directory whose ``sitecustomize`` a command's Python loads (v1 imports, environments)
COMMAND_SITE = Path(__file__).resolve().parent / "command_site"


def command_line(event: ev.StepDispatched, adir: AttemptDir) -> str:
    """The command's items as one line, every substituted item quoted."""
    inputs = {i.name: i.local_path for i in event.inputs}
    outputs = {o.name for o in event.outputs}
    words: list[str] = []
    for item in event.command:
        kind, value = item.get("kind"), item.get("value") or item.get("name", "")
        if kind == "literal":
            words.append(value)
        elif kind == "value":
            words.append(shlex.quote(value))
        elif kind == "input":
            if value in inputs:
                words.append(shlex.quote(inputs[value]))
            elif any(name.startswith(f"{value}/") for name in inputs):
                words.append(shlex.quote(str(adir.inputs / value)))  # a dataset of several paths
            else:
                raise StepStartError(f"the command names input {value!r}, which was not bound")
        elif kind == "output":
            if value not in outputs:
                raise StepStartError(f"the command names output {value!r}, which is not declared")
            words.append(shlex.quote(str(adir.outputs / value)))
        else:
            raise StepStartError(f"unknown command item kind {kind!r}")
    return " ".join(words)


def command_words(line: str) -> list[str]:
    """The argv that runs ``line``: its words, or ``/bin/sh -c line`` for shell syntax."""
    if any(c in SHELL_CHARACTERS for c in line):
        return ["/bin/sh", "-c", line]
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise StepStartError(
            f"the command line {line!r} cannot be split into words: {exc}"
        ) from None
    if not words:
        raise StepStartError("the command is empty; give the program to run")
    return words


def command_argv(event: ev.StepDispatched, adir: AttemptDir) -> list[str]:
    """The boot shim's arguments for a command step: lease file, ``--command``, the number
    of processes, then the command's words."""
    python_shim(adir)
    words = command_words(command_line(event, adir))
    return [str(adir.lease), "--command", str(event.processes), *words]


def python_shim(adir: AttemptDir) -> Path:
    """A ``bin`` directory whose ``python`` and ``python3`` are the runner's interpreter.

    Why a script and not a link: a virtual environment's interpreter finds its packages from
    the path it was started by, which a link elsewhere would change.
    """
    bindir = adir.root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        shim.chmod(0o755)
    return bindir


def command_environment(env: dict[str, str], adir: AttemptDir) -> dict[str, str]:
    """``env`` for a command's processes: the ``python`` shim first on ``PATH``, and the
    command site on ``PYTHONPATH`` so that the Python it starts is set up as a script step."""
    pythonpath = [str(COMMAND_SITE), *filter(None, [env.get("PYTHONPATH")])]
    return {
        **env,
        "PATH": os.pathsep.join([str(adir.root / "bin"), env.get("PATH", os.defpath)]),
        "PYTHONPATH": os.pathsep.join(pythonpath),
    }
