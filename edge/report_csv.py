"""A results CSV that never replaces a file, is safe to open in a spreadsheet, and is not left half-written."""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path
from typing import Optional, Sequence

from artery_edge.edge.atomic import atomic_path

# A cell starting with one of these is a formula in Excel / LibreOffice ("CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class ResultsCsv:
    """Rows streamed into a temporary file that takes its real name only when complete
    (``edge.atomic``): an existing file, or one created by someone else meanwhile, is never
    overwritten, and a run that fails part-way (or is killed) leaves no partial file under it."""

    def __init__(self, path: Path, handle, fields: Sequence[str], stack: contextlib.ExitStack) -> None:
        self.path, self._handle, self._stack = path, handle, stack
        self._writer = csv.DictWriter(handle, fieldnames=list(fields))
        self._writer.writeheader()

    @classmethod
    def create(cls, path: Path, fields: Sequence[str]) -> "ResultsCsv":
        path = Path(path)
        if os.path.lexists(path):  # said before any work; the final link checks again
            raise FileExistsError(f"{path} exists; refusing to overwrite it")
        stack = contextlib.ExitStack()
        try:
            temp = stack.enter_context(atomic_path(path, overwrite=False))
            handle = stack.enter_context(open(temp, "x", newline="", encoding="utf-8", errors="backslashreplace"))
        except BaseException:
            stack.close()
            raise
        return cls(path, handle, fields, stack)

    def write(self, row: dict) -> None:
        self._writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})

    def __enter__(self) -> "ResultsCsv":
        return self

    def __exit__(self, kind: Optional[type], error, traceback) -> None:
        """Closes the file; moves it into place if the block succeeded, else removes it."""
        self._stack.__exit__(kind, error, traceback)
