"""Every test says what it proves: fail when a ``test_*`` function has no docstring.

Run by ``make lint``. Why: a test's one-line docstring is how a reader (and a reviewer of a
failure at 2 a.m.) knows which behaviour broke without reading its body.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def missing(root: Path) -> list[str]:
    """``path:line name`` of every test function under ``root`` without a docstring."""
    out = []
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            is_test = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                node.name.startswith("test_")
            )
            if is_test and not ast.get_docstring(node):  # type: ignore[arg-type]
                out.append(f"{path}:{node.lineno} {node.name}")  # type: ignore[attr-defined]
    return out


def main() -> int:
    found = missing(Path(sys.argv[1] if len(sys.argv) > 1 else "tests"))
    for line in found:
        print(f"{line}: test without a docstring saying what it proves")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
