"""Code shape: no function of the packages is longer than a reader can hold (issue 21); no import
circle among the project's modules and no import against the layering; each kind of script in its
own folder with a README; the README short (issue 38).

TensorFlow-free and fast: the sources are parsed with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
import re
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


# --- one record of what a model is (issue 38) ---------------------------------------------------

RECORD_OWNERS = {"edge/model_record.py"}  # the record, its checks, its JSON form
RUN_FILE_OWNER = "trainer/runs.py"  # run.json: write_run writes it, load_run reads it


def package_sources(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
            for package in packages for path in sorted((root / package).rglob("*.py"))}


def record_bypasses(sources: dict[str, str]) -> list[str]:
    """Code that writes or parses run.json, or range-checks a threshold, outside the record's owners."""
    found = []
    for name, text in sources.items():
        if name != RUN_FILE_OWNER and re.search(r"(RUN_FILE|run\.json)\W*\)?\.read_text|json\.loads\([^\n]*(RUN_FILE|run\.json)"
                                                r"|write_json\([^\n]*(RUN_FILE|run\.json)", text):
            found.append(f"{name} reads or writes run.json itself")
        if name not in RECORD_OWNERS and re.search(r"0 <= [\w.]*threshold[\w.]* <= 1", text):
            found.append(f"{name} checks a threshold's range itself")
    return found


def test_one_writer_and_one_reader_of_the_model_record() -> None:
    found = record_bypasses(package_sources())
    assert not found, "the model record has one owner (edge/model_record.py, trainer/runs.py): " + "; ".join(found)


def test_a_record_bypass_is_found() -> None:
    assert record_bypasses({"evaluation/x.py": "record = json.loads((run_dir / RUN_FILE).read_text())\n",
                            "edge/y.py": "if not 0 <= self.threshold <= 1:\n    raise ValueError\n",
                            "trainer/z.py": "runs.write_json(run_dir / runs.RUN_FILE, {})\n"}) == [
        "evaluation/x.py reads or writes run.json itself", "edge/y.py checks a threshold's range itself",
        "trainer/z.py reads or writes run.json itself"]


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


# --- the CLI: declarations and calls only (issue 38) --------------------------------------------

CLI = REPO / "artery_edge" / "cli.py"
# cli.py's functions besides its commands: the typer glue, and the one mapping of errors to exits
CLI_GLUE = {"show_version", "fail", "describe_os_error", "user_errors", "require_tensorflow", "stdout_for_json",
            "as_option_error", "with_options", "given_options", "main"}
CLI_ERROR_MAPPING = {"show_version", "user_errors", "require_tensorflow", "as_option_error"}  # may turn a case into an exit


def is_command(node: ast.AST) -> bool:
    """A function under ``@app.command()`` or ``@app.callback()``."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ("command", "callback")
               for d in getattr(node, "decorator_list", []))


def stops(nodes: list[ast.stmt]) -> bool:
    """The statements raise or call ``fail`` (the CLI's error exit)."""
    return any(isinstance(n, ast.Raise) or isinstance(n, ast.Call) and getattr(n.func, "id", "") == "fail"
               for statement in nodes for n in ast.walk(statement))


def cli_checks(tree: ast.Module) -> list[tuple[str, int]]:
    """``(function, line)`` of each check: an ``if`` or ``except`` whose own body raises or calls ``fail``."""
    found = []
    for function in tree.body:
        if isinstance(function, ast.FunctionDef):
            found += [(function.name, node.lineno) for node in ast.walk(function)
                      if isinstance(node, (ast.If, ast.ExceptHandler)) and stops(node.body)]
    return found


def logic_lines(source: str) -> int:
    """Lines of code inside function bodies, docstrings, blank lines and comments left out: what
    the CLI does, as against what it declares (a command's signature is its typer declarations)."""
    tree, lines, counted = ast.parse(source), source.splitlines(), set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = function.body[1:] if ast.get_docstring(function) is not None else function.body
            for statement in body:
                counted.update(range(statement.lineno, statement.end_lineno + 1))
    return sum(1 for n in counted if lines[n - 1].strip() and not lines[n - 1].strip().startswith("#"))


def cli_figures(source: str) -> dict[str, int]:
    """cli.py's size (issue 38's figures): lines, logic lines, checks outside the error mapping, and
    `train` options declared by hand (the keys of a TRAIN_OPTIONS dict literal). To print them:
    ``python -c "from tests.test_code_shape import *; print(cli_figures(CLI.read_text()))"``"""
    tree = ast.parse(source)
    by_hand = [len(node.value.keys) for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
               and "TRAIN_OPTIONS" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
               and isinstance(node.value, ast.Dict)]
    checks = [check for check in cli_checks(tree) if check[0] not in CLI_ERROR_MAPPING]
    return {"lines": len(source.splitlines()), "logic": logic_lines(source), "checks": len(checks),
            "train_options_by_hand": sum(by_hand)}


def cli_shape(source: str) -> list[str]:
    """What makes cli.py more than declarations and calls: a helper that is not typer glue, a check
    outside the error mapping, a loop in a command (the packages' options objects, runners and
    edge/printers.py do those)."""
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    problems = [f"{f.name}: logic outside the commands (move it to the package the command belongs to)"
                for f in functions if not is_command(f) and f.name not in CLI_GLUE]
    problems += [f"{name} line {line}: a check (move it into the command's options object)"
                 for name, line in cli_checks(tree) if name not in CLI_ERROR_MAPPING]
    problems += [f"{f.name} line {node.lineno}: a loop in a command (a printer or runner of the package does it)"
                 for f in functions if is_command(f) for node in ast.walk(f) if isinstance(node, (ast.For, ast.While))]
    return problems


def test_the_cli_holds_declarations_and_calls_only() -> None:
    problems = cli_shape(CLI.read_text(encoding="utf-8"))
    assert not problems, "artery_edge/cli.py declares commands and calls the packages: " + "; ".join(problems)


def test_a_check_a_helper_and_a_loop_in_the_cli_are_found() -> None:
    source = ("@app.command()\ndef infer(threshold: float = typer.Option(None)) -> None:\n"
              "    if threshold > 1:\n        fail('--threshold', 2)\n    for row in rows:\n        show(row)\n\n\n"
              "def infer_files(files) -> int:\n    return 0\n")
    assert cli_shape(source) == ["infer_files: logic outside the commands (move it to the package the command "
                                 "belongs to)", "infer line 3: a check (move it into the command's options object)",
                                 "infer line 5: a loop in a command (a printer or runner of the package does it)"]
    assert cli_figures(source) == {"lines": 10, "logic": 5, "checks": 1, "train_options_by_hand": 0}
