"""Code shape: no function of the packages is longer than a reader can hold (issue 21).

TensorFlow-free and fast: the sources are parsed with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trainer", "edge", "converters", "evaluation", "artery_edge")
MAX_FUNCTION_LINES = 60  # from `def` to the last line of the body, docstring included


def long_functions(source: Path, root: Path = REPO, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path::Class.function (N lines)`` for each function or method of ``source`` (nested
    ones included) over ``limit``; the path is relative to ``root``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                lines = child.end_lineno - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and lines > limit:
                    found.append(f"{source.relative_to(root)}::{name} ({lines} lines)")
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source.read_text(encoding="utf-8"), str(source)), "")
    return found


def test_no_function_over_the_limit() -> None:
    sources = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert sources, "no sources found"
    too_long = [entry for path in sources for entry in long_functions(path)]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines (split them): " + "; ".join(too_long)


def test_a_long_function_is_named(tmp_path: Path) -> None:
    body = "".join("        x = 1\n" for _ in range(MAX_FUNCTION_LINES))
    (tmp_path / "sample.py").write_text(f"class Holder:\n    def long(self):\n{body}\n\ndef short():\n    return 1\n")
    assert long_functions(tmp_path / "sample.py", tmp_path) == [
        f"sample.py::Holder.long ({MAX_FUNCTION_LINES + 1} lines)"]
