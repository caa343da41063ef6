"""Text that came from outside (folder and file names, a model's metadata), made safe to show.

Two writers only: :func:`markdown` for every Markdown file the project writes (model card,
evaluation report, layer report) and :func:`terminal` for every line printed to a terminal.
A class folder named ``<img onerror=...>`` or ``a|b`` and a file name holding a newline or a
carriage return then read as the text they are, never as markup, a table cell border or a
second output line. Standard library only (the device package uses it).
"""

from __future__ import annotations

import os
import re
from typing import Union

# C0 and C1 control characters and DEL: they move the cursor, end a line or start an escape sequence.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Characters Markdown (CommonMark / GFM) or inline HTML may read as syntax anywhere in a line.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _visible_control(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char, f"\\x{ord(char):02x}")


def terminal(text: Union[str, os.PathLike, object]) -> str:
    """``text`` on one printable line: control characters as ``\\n``, ``\\r``, ``\\x1b``...,
    undecodable bytes of a file name as ``\\udcxx`` escapes (never an error)."""
    text = os.fsdecode(text) if isinstance(text, (bytes, os.PathLike)) else str(text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(_visible_control, text)


def markdown(text: Union[str, os.PathLike, object]) -> str:
    """``text`` as literal Markdown inline text (a table cell, a heading, a list item): HTML
    special characters as entities, Markdown punctuation backslash-escaped, control characters
    as visible escapes (see :func:`terminal`)."""
    text = terminal(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_code(text: Union[str, os.PathLike, object], in_table: bool = False) -> str:
    """``text`` as an inline code span, delimited by more backticks than it contains. In a table
    cell ``|`` is escaped too (GFM splits a row into cells before it reads code spans)."""
    text = terminal(text)
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def literal_figures(matplotlib) -> None:
    """Figures drawn off-screen (Agg) with every text literal: a class or file name holding
    ``$...$`` is not parsed as mathtext (which can fail on it and abort the writer)."""
    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
