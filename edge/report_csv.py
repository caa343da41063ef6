"""A results CSV that never replaces a file, is safe to open in a spreadsheet, and is not left half-written."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

# A cell starting with one of these is a formula in Excel / LibreOffice ("CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class ResultsCsv:
    """Rows streamed into a file created exclusively (``open(..., "x")``): an existing file, or one
    created by someone else meanwhile, is never overwritten. A run that fails part-way removes
    its own partial file, so a rerun is not blocked by it."""

    def __init__(self, path: Path, handle, fields: Sequence[str]) -> None:
        self.path, self._handle = path, handle
        self._writer = csv.DictWriter(handle, fieldnames=list(fields))
        self._writer.writeheader()

    @classmethod
    def create(cls, path: Path, fields: Sequence[str]) -> "ResultsCsv":
        try:
            handle = open(path, "x", newline="", encoding="utf-8", errors="backslashreplace")
        except FileExistsError:
            raise FileExistsError(f"{path} exists; refusing to overwrite it") from None
        return cls(Path(path), handle, fields)

    def write(self, row: dict) -> None:
        self._writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})

    def __enter__(self) -> "ResultsCsv":
        return self

    def __exit__(self, kind: Optional[type], error, traceback) -> None:
        try:
            self._handle.close()
        except OSError:
            if kind is None:
                self.path.unlink(missing_ok=True)
                raise
        if kind is not None:
            self.path.unlink(missing_ok=True)
