"""``make run``: start the embedded stack, run the compare-models example, stop.

The stack's state goes to ``./.headrace`` (unless ``HEADRACE_HOME`` says otherwise), so the
demo leaves nothing in the user's home directory; runs stay there for the next ``up``. It
lives beside the examples, not in the ``headrace`` package: an installed headrace has no
``examples`` to import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from examples.compare_models.pipeline import main as run_example

__all__ = ["main"]


def _headrace(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "headrace", *args])


def main() -> int:
    os.environ.setdefault("HEADRACE_HOME", str(Path.cwd() / ".headrace"))
    t0 = time.monotonic()
    if _headrace("up", "--runners", "2") != 0:
        return 1
    try:
        code = run_example()
    finally:
        _headrace("down")
    print(f"make run: {'completed' if code == 0 else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
