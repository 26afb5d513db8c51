"""Where an embedded stack keeps its state: one rule for the CLI, the stack and the SDK.

``$HEADRACE_HOME`` when set; else the nearest ``.headrace`` directory in the current directory
or one of its parents (``make run`` leaves one in the checkout); else ``~/.headrace``.

Why one rule: ``headrace up`` and ``Workspace.from_config()`` once resolved the state
directory differently, so after ``make run`` a script in the checkout read the demo's stopped
stack while ``headrace up`` had started another under the home directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["state_home"]


def state_home() -> Path:
    """The state directory of the stack this process means (see the module docstring)."""
    if env := os.environ.get("HEADRACE_HOME"):
        return Path(env).absolute()
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / ".headrace").is_dir():
            return d / ".headrace"
    return Path.home() / ".headrace"
