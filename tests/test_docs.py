"""The README and docs/ stay true: every `artery-edge` command and option they name exists,
and every docs page they link to is there. TF-free (the CLI imports TensorFlow lazily)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from artery_edge.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# where a command starts: a line (after `$ `), inline code, a path (`.venv/bin/`), `ExecStart=`, `&&`, `$(`
COMMAND_LINE = re.compile(r"(?:^[ \t]*(?:\$[ \t]*)?|`|/|ExecStart=|&&[ \t]*|\$\()artery-edge ([a-z][a-z-]*)([^`\n|]*)",
                          re.MULTILINE)
GLOBAL_OPTIONS = {"--help", "--version"}


def commands() -> dict[str, set[str]]:
    """Each command of the app and the option names it takes."""
    group = typer.main.get_command(app)
    return {name: {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
            for name, command in group.commands.items()}


def named_command_lines(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) for every `artery-edge CMD ...` the page names, continuation lines
    joined; option names are the `--x` tokens, with any `=value` dropped."""
    text = text.replace("\\\n", " ")
    found = []
    for match in COMMAND_LINE.finditer(text):
        rest = match.group(2).split("#")[0]  # a shell comment is prose
        found.append((match.group(1), [tok.split("=")[0] for tok in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest)]))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_command_and_option_exists(page):
    known = commands()
    problems = []
    for command, options in named_command_lines(page.read_text()):
        if command not in known:
            problems.append(f"unknown command `artery-edge {command}`")
            continue
        problems += [f"`artery-edge {command}` has no option {opt}" for opt in options
                     if opt not in known[command] | GLOBAL_OPTIONS]
    assert not problems, f"{page.name}: " + "; ".join(problems)


def test_the_checker_catches_a_made_up_option():
    found = named_command_lines("```bash\nartery-edge infer --image x.png \\\n  --no-such-flag\n```")
    assert found == [("infer", ["--image", "--no-such-flag"])]
    assert "--no-such-flag" not in commands()["infer"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_linked_pages_exist(page):
    links = re.findall(r"\]\(((?:docs/|\.\./)?[\w./-]+\.md)\)", page.read_text())
    missing = [link for link in links if not (page.parent / link).resolve().is_file()]
    assert not missing, f"{page.name} links to missing pages: {missing}"
