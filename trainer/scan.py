"""Class-folder datasets found on disk: the folders checked, every image decoded once.

Decoding while scanning skips a corrupt image with a warning up front instead of crashing
training mid-epoch. TensorFlow-free.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from artery_edge.edge.errors import ImageError
from artery_edge.edge.imaging import iter_image_files, open_image
from artery_edge.edge.model_record import check_labels
from artery_edge.trainer.samples import DataError, Sample


@dataclass
class ScannedDataset:
    root: Path
    class_names: list[str]
    samples: list[Sample]
    skipped: list[str]


def scan_dataset(
    roots: Path | Sequence[Path], validate: bool = True, progress: Optional[Callable[[int, int], None]] = None
) -> ScannedDataset:
    """Find ``root/<class>/<image>`` files in one or several folders, merged class by class;
    classes are the sorted folder names (a class may be missing from some folders, and equal
    file names in two folders stay two samples). ``root`` of the result is the folders'
    common parent, against which split manifests name their files.

    Unreadable images are skipped and named in ``skipped``; non-image files are ignored.
    """
    roots = check_data_folders([roots] if isinstance(roots, (str, Path)) else roots)
    problems: list[str] = []
    files: dict[str, list[Path]] = {}
    for root in roots:
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found = list(iter_image_files(folder, problems))
            if found:
                files.setdefault(folder.name, []).extend(found)
    refuse_files_reached_twice(f for found in files.values() for f in found)
    where = " + ".join(str(r) for r in roots)
    if not files:
        raise DataError(f"no class folders with images in {where} (expected {roots[0]}/<class>/<image>.png)")
    if len(files) < 2:
        raise DataError(f"found only one class ({next(iter(files))}) in {where}; need at least two class folders")
    class_names = sorted(files)
    check_labels(class_names, 2, f"class folders of {where}", DataError)  # the record's rule, before any work
    samples = [Sample(path, label) for label, name in enumerate(class_names) for path in files[name]]
    skipped: list[str] = []
    if validate:
        samples, skipped = readable(samples, progress)
    usable = Counter(s.label for s in samples)
    empty = [name for label, name in enumerate(class_names) if not usable[label]]
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} in {where} hold no readable image "
                        f"({len(skipped)} unreadable file(s), e.g. {skipped[0]})")
    return ScannedDataset(common_root(roots), class_names, samples, problems + skipped)


def check_data_folders(roots: Sequence[Path | str]) -> list[Path]:
    """The data folders, resolved; one given twice, or one inside another (its images would be
    counted twice, and the same image could land in train and test), is a :class:`DataError`."""
    resolved = [Path(r).resolve() for r in roots]
    if not resolved:
        raise DataError("no data directory given")
    for i, root in enumerate(resolved):
        if not root.is_dir():
            raise DataError(f"data directory {root} does not exist")
        for other in resolved[:i]:
            if root == other:
                raise DataError(f"data folder {root} is given twice: each image would count twice")
            if root.is_relative_to(other) or other.is_relative_to(root):
                inner, outer = (root, other) if root.is_relative_to(other) else (other, root)
                raise DataError(f"data folder {inner} lies inside {outer}: its images would count twice")
    return resolved


def refuse_files_reached_twice(paths: Iterable[Path]) -> None:
    """One image file reached by two paths (a symlink or hard link, a linked folder) would be
    two samples, possibly one in train and one in test: a :class:`DataError` names both."""
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        try:
            info = path.stat()
        except OSError:  # dangling link, no permission: reported as unreadable when opened
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            raise DataError(f"the same image file is reached twice, as {seen[key]} and as {path} "
                            "(a link or a linked folder): remove one, or the split could leak it")
        seen[key] = path


def common_root(roots: Sequence[Path]) -> Path:
    """The folder split manifests are relative to: the data folder itself, or for several
    folders their deepest common parent."""
    resolved = [str(Path(r).resolve()) for r in roots]
    return Path(resolved[0] if len(resolved) == 1 else os.path.commonpath(resolved))


def readable(samples: Sequence[Sample], progress: Optional[Callable[[int, int], None]] = None
             ) -> tuple[list[Sample], list[str]]:
    """The samples whose file decodes, and one message per file that does not.

    Every pipeline checks its files up front: a file that fails inside tf.data would end a
    prediction loop with a traceback (or a hang), and a skipped file is always reported.
    """
    kept, skipped = [], []
    for done, sample in enumerate(samples, 1):
        try:
            open_image(sample.path)
            kept.append(sample)
        except ImageError as exc:
            skipped.append(str(exc))
        if progress:
            progress(done, len(samples))
    return kept, skipped

