"""Split files (CSV): the manifest a run writes (``split.csv``) and reads back, and a split a
user gives with ``--split-file``. Rows are checked so a cut or hand-edited file is one error
line that names its line number. TensorFlow-free.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

from artery_edge.edge.atomic import atomic_path
from artery_edge.edge.model_record import check_labels
from artery_edge.trainer.samples import SUBSETS, DataError, Sample
from artery_edge.trainer.splits import sort_split


def write_split(path: Path, samples: Iterable[Sample], root: Path, class_names: Sequence[str]) -> None:
    """The split manifest: one row per file (relative to the data root), class, subset and group;
    written atomically."""
    with atomic_path(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class", "subset", "group"])
        for s in samples:
            # a file outside the root (a replay sample of a parent run's data) keeps its absolute path
            name = s.path.relative_to(root) if s.path.is_relative_to(root) else s.path
            writer.writerow([name.as_posix(), class_names[s.label], s.subset, s.group])


def read_split(path: Path, root: Path, class_names: Sequence[str]) -> list[Sample]:
    """Read a manifest written by :func:`write_split`, resolving files against ``root``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no split manifest at {path}")
    index = {name: i for i, name in enumerate(class_names)}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        for line, row in zip(row_lines(path), rows):
            check_row(path, line, row, ("file", "class", "subset"))
        return [Sample(Path(root) / row["file"], index[row["class"]], row["subset"], row.get("group") or "")
                for row in rows]
    except KeyError as exc:
        raise DataError(f"{path}: unexpected row or class {exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable split manifest ({exc})") from None


def split_class_names(path: Path) -> list[str]:
    """The class names of a split manifest, sorted as the scan sorts them."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        names = {row.get("class") for row in csv.DictReader(handle)}
    if None in names or "" in names:
        raise DataError(f"{path}: a row has no class (short row)")
    check_labels(sorted(names), 2, f"{path}: classes", DataError)
    return sorted(names)


def split_from_file(samples: Sequence[Sample], split_file: Path, root: Path) -> tuple[list[Sample], int]:
    """Assign subsets from a CSV with a ``file`` (or ``path``) and a ``subset`` column; files
    relative to the data folder or absolute (a run's own ``split.csv`` works). Returns the
    assigned samples and how many scanned files the CSV does not list (left out)."""
    split_file = Path(split_file)
    try:
        with open(split_file, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is no text
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"split file {split_file}: {exc}") from None
    column = next((c for c in ("file", "path") if rows and c in rows[0]), None)
    if column is None or "subset" not in rows[0]:
        raise DataError(f"split file {split_file}: needs a 'file' (or 'path') and a 'subset' column")
    by_path = {s.path.resolve(): s for s in samples}
    assigned: dict[Path, Sample] = {}
    lines: dict[Path, int] = {}
    for line, row in zip(row_lines(split_file), rows):
        check_row(split_file, line, row, (column, "subset"))
        if row["subset"] not in SUBSETS:
            raise DataError(f"split file {split_file}, line {line}: subset {row['subset']!r} is not one of {', '.join(SUBSETS)}")
        file = Path(row[column])
        full = (file if file.is_absolute() else Path(root) / file).resolve()
        if full not in by_path:
            what = "does not exist" if not full.exists() else "is not a readable image of the dataset"
            raise DataError(f"split file {split_file}, line {line}: {row[column]} {what}")
        if full in lines:
            raise DataError(f"split file {split_file}, line {line}: {row[column]} is listed twice (also line {lines[full]})")
        lines[full] = line
        assigned[full] = Sample(by_path[full].path, by_path[full].label, row["subset"])
    result = list(assigned.values())
    missing = [name for name in SUBSETS if not any(s.subset == name for s in result)]
    if missing:
        raise DataError(f"split file {split_file}: no file in {', '.join(missing)}")
    return sort_split(result), len(samples) - len(result)


def row_lines(path: Path) -> list[int]:
    """The line number each data row of a CSV starts on (a quoted field may span lines; blank
    lines hold no row), for error messages that point at the right line."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        starts, previous = [], 0
        for row in reader:
            if row:
                starts.append(previous + 1)
            previous = reader.line_num
    return starts[1:]


def check_row(path: Path, line: int, row: dict, columns: Sequence[str]) -> None:
    """A short row (a cell missing, e.g. a cut file or a missing comma) is a :class:`DataError`."""
    missing = [c for c in columns if row.get(c) is None]
    if missing:
        raise DataError(f"{path}, line {line}: the row has no {', '.join(missing)} value (short row)")

