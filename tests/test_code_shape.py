"""Code shape: no function of the packages is longer than a reader can hold (issue 21); no import
circle among the project's modules and no import against the layering; each kind of script in its
own folder with a README; the README short (issue 38).

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


# --- imports: no circle, no arrow up (issue 38) -------------------------------------------------

# Which packages each may import (itself included): edge at the bottom (the device installs it
# alone), the trainer on it, conversion and evaluation on both, the CLI on top of everything.
MAY_IMPORT = {
    "edge": {"edge"},
    "trainer": {"trainer", "edge"},
    "converters": {"converters", "trainer", "edge"},
    "evaluation": {"evaluation", "trainer", "edge"},
    "artery_edge": set(PACKAGES),
}


def module_names(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """``package.module`` -> its file, for every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name an import statement of the file names, anywhere in it (an import inside a
    function is a dependency too); ``from a import b`` gives ``a.b`` (``b`` may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the project modules it imports (each name resolved to the longest module it names)."""
    modules = module_names(root, packages)

    def resolve(name: str) -> str:
        head, _, rest = name.partition(".")
        if head == "artery_edge" and rest.partition(".")[0] in packages:
            name = rest  # the installed name of a project folder (pyproject.toml's package-dir)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    return {module: {target for target in map(resolve, imported_names(path, module)) if target and target != module}
            for module, path in modules.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules that import each other, directly or round a longer circle: each strongly
    connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(circles)


def arrows_up(graph: dict[str, set[str]]) -> list[str]:
    """``a.b -> c.d`` for each import of a package that ``MAY_IMPORT`` does not allow."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if target.split(".")[0] not in MAY_IMPORT[module.split(".")[0]])


def test_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50, "too few modules found"
    circles = import_circles(graph)
    assert not circles, "modules that import each other (move what both need into a module of its own): " + \
        "; ".join(" <-> ".join(circle) for circle in circles)


def test_no_arrow_up() -> None:
    up = arrows_up(import_graph())
    assert not up, "imports against the layering (edge <- trainer <- converters, evaluation <- artery_edge): " + \
        "; ".join(up)


def write_sources(root: Path, sources: dict[str, str]) -> None:
    for name, text in sources.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_lazy_circle_and_an_arrow_up_are_found(tmp_path: Path) -> None:
    write_sources(tmp_path, {
        "edge/__init__.py": "", "edge/a.py": "from . import b\n",
        "edge/b.py": "def late():\n    from edge.c import x\n", "edge/c.py": "import edge.a\nx = 1\n",
        "edge/d.py": "def up():\n    from trainer.t import y\n",
        "trainer/__init__.py": "", "trainer/t.py": "from edge import a\nfrom edge.b import late\ny = 1\n"})
    graph = import_graph(tmp_path, ("edge", "trainer"))
    assert import_circles(graph) == [["edge.a", "edge.b", "edge.c"]]
    assert graph["trainer.t"] == {"edge.a", "edge.b"}
    assert arrows_up(graph) == ["edge.d -> trainer.t"]


# --- the rooms: each kind of thing in its own folder, each folder saying what it holds ----------

ROOMS = {  # folder -> what it holds (each file there is named in its README.md)
    "benchmarks": "speed benchmarks",
    "studies": "accuracy studies and experiments",
    "tests/probes": "hostile-probe harnesses (tests/probes.md holds their table)",
    "platform": "platform checks (arm64, GPU)",
}
NOT_A_BENCHMARK = ("probe_*", "site_*", "*adaptation*", "arm64*", "gpu_*", "*parity*", "*seed*", "recipe_*",
                   "experiment_*", "gradcam_*", "tta_*", "quantizer_*", "*_check*")
README_MAX_LINES = 250


def test_every_room_has_a_readme_naming_each_of_its_files() -> None:
    problems = []
    for room in ROOMS:
        readme = REPO / room / "README.md"
        if not readme.is_file():
            problems.append(f"{room}/README.md is missing")
            continue
        text = readme.read_text(encoding="utf-8")
        problems += [f"{room}/README.md does not name {path.name}" for path in sorted((REPO / room).iterdir())
                     if path.is_file() and path.name != "README.md" and f"`{path.name}`" not in text]
    assert not problems, "; ".join(problems)


def test_benchmarks_holds_speed_benchmarks_only() -> None:
    misplaced = [path.name for path in sorted((REPO / "benchmarks").iterdir())
                 if any(path.match(pattern) for pattern in NOT_A_BENCHMARK)]
    assert not misplaced, f"benchmarks/ is for speed; move these to studies/, tests/probes/ or platform/: {misplaced}"


def test_the_probe_harnesses_are_never_collected_as_tests() -> None:
    assert not list((REPO / "tests" / "probes").glob("test_*.py")), "a probe harness named like a test"
    assert "collect_ignore = [\"probes\"]" in (REPO / "tests" / "conftest.py").read_text(encoding="utf-8")


def test_platform_is_never_an_import_name() -> None:
    # with an __init__.py, the folder would shadow the standard library's `platform` for any
    # process started in the repository root
    assert not (REPO / "platform" / "__init__.py").exists()


def test_the_readme_stays_short() -> None:
    lines = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"
