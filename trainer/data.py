"""Class-folder datasets: scan, stratified seeded split, split manifest and the tf.data pipeline.

Scanning and splitting are TensorFlow-free; only :func:`make_dataset` imports it.
Every file is decoded once while scanning so a corrupt image is skipped with a warning
up front instead of crashing training mid-epoch.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from edge.atomic import atomic_path
from edge.errors import ArteryEdgeError, ImageError
from edge.imaging import iter_image_files, load_image, open_image

SUBSETS = ("train", "validation", "test")


class DataError(ArteryEdgeError, ValueError):
    """The dataset cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    subset: str = ""
    group: str = ""  # e.g. a patient or recording (--group-pattern); no group spans two subsets


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
    import os

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


def stratified_split(
    samples: Sequence[Sample], val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 42
) -> list[Sample]:
    """Assign every sample to train/validation/test, per class, reproducibly for a seed."""
    return stratified_assign(samples, {"validation": val_fraction, "test": test_fraction}, seed)


def stratified_assign(samples: Sequence[Sample], fractions: dict[str, float], seed: int) -> list[Sample]:
    """Per class, deal each subset of ``fractions`` its share (at least one image; none for a
    fraction of 0), in the order given; the rest train. Reproducible for a seed."""
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: (s.label, str(s.path))):
        by_label.setdefault(sample.label, []).append(sample)
    result = []
    for label, group in sorted(by_label.items()):
        n = len(group)
        bounds, taken = [], 0
        for name, fraction in fractions.items():
            taken += max(1, round(n * fraction)) if fraction > 0 else 0
            bounds.append((taken, name))
        if n - taken < 1:
            wanted = [name for name, fraction in fractions.items() if fraction > 0]
            raise DataError(f"class {label} has {n} usable image(s); need at least {len(wanted) + 1} "
                            f"to fill train, {', '.join(wanted)}")
        order = rng.permutation(n)
        for rank, i in enumerate(order):
            name = next((name for bound, name in bounds if rank < bound), "train")
            result.append(Sample(group[i].path, label, name, group[i].group))
    return sort_split(result)


def sort_split(samples: Iterable[Sample]) -> list[Sample]:
    return sorted(samples, key=lambda s: (SUBSETS.index(s.subset), s.label, str(s.path)))


RULE_END = re.compile("(?:" + "|".join(f"(?<=={name})" for name in SUBSETS) + r")\s*,")  # the comma after REGEX=SUBSET ends a rule


def parse_split_pattern(spec: str) -> list[tuple[re.Pattern[str], str]]:
    """``'validation-=test'`` or ``'a=validation,b=test'``: regexes searched in each file name,
    each with the subset its files go to. Rules are cut after each ``=SUBSET``, not at every
    comma, so a regex may hold commas (``x{1,3}=test``)."""
    rules = []
    for part in (p.strip() for p in RULE_END.split(spec) if p.strip() and p.strip() != ","):
        pattern, sep, name = part.rpartition("=")
        if not sep or not pattern or name not in SUBSETS:
            raise DataError(f"--split-pattern {part!r} must be REGEX=SUBSET with SUBSET one of {', '.join(SUBSETS)}")
        try:
            rules.append((re.compile(pattern), name))
        except re.error as exc:
            raise DataError(f"--split-pattern {pattern!r} is not a valid regular expression ({exc})") from None
    if not rules:
        raise DataError("--split-pattern is empty")
    return rules


def pattern_split(samples: Sequence[Sample], spec: str, fractions: dict[str, float], seed: int,
                  group_pattern: str = "") -> list[Sample]:
    """A published split kept by file name (e.g. ``validation-=test``): files whose name
    matches a rule go to its subset; the others fill the subsets no rule names, with
    ``fractions`` of them (stratified, or by group with ``group_pattern``), the rest train."""
    rules = parse_split_pattern(spec)
    named, rest = [], []
    for sample in samples:
        subset_name = next((name for regex, name in rules if regex.search(sample.path.name)), None)
        (rest if subset_name is None else named).append(
            sample if subset_name is None else Sample(sample.path, sample.label, subset_name, sample.group))
    for regex, name in rules:
        if not any(regex.search(s.path.name) for s in samples):
            raise DataError(f"--split-pattern {regex.pattern!r}={name} matches no file name (e.g. {samples[0].path.name})")
    open_fractions = {k: v for k, v in fractions.items() if k not in {name for _, name in rules}}
    if group_pattern and rest:
        rest = group_split(rest, group_pattern, open_fractions.get("validation", 0), open_fractions.get("test", 0),
                           seed, required=("train", *(k for k, v in open_fractions.items() if v > 0)))
    elif rest:
        rest = stratified_assign(rest, open_fractions, seed)
    result = sort_split(named + rest)
    optional = {name for name, fraction in open_fractions.items() if fraction == 0}  # e.g. no test split
    missing = [name for name in SUBSETS if name not in optional and not any(s.subset == name for s in result)]
    if missing:
        raise DataError(f"--split-pattern {spec!r}: no file in {', '.join(missing)}")
    return result


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
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for line, row in zip(row_lines(path), rows):
            check_row(path, line, row, ("file", "class", "subset"))
        return [Sample(Path(root) / row["file"], index[row["class"]], row["subset"], row.get("group") or "")
                for row in rows]
    except KeyError as exc:
        raise DataError(f"{path}: unexpected row or class {exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable split manifest ({exc})") from None


def row_lines(path: Path) -> list[int]:
    """The line number each data row of a CSV starts on (a quoted field may span lines; blank
    lines hold no row), for error messages that point at the right line."""
    with open(path, newline="", encoding="utf-8") as handle:
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


def split_from_file(samples: Sequence[Sample], split_file: Path, root: Path) -> tuple[list[Sample], int]:
    """Assign subsets from a CSV with a ``file`` (or ``path``) and a ``subset`` column; files
    relative to the data folder or absolute (a run's own ``split.csv`` works). Returns the
    assigned samples and how many scanned files the CSV does not list (left out)."""
    split_file = Path(split_file)
    try:
        with open(split_file, newline="", encoding="utf-8") as handle:
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


def group_split(samples: Sequence[Sample], pattern: str, val_fraction: float, test_fraction: float,
                seed: int, required: Sequence[str] = SUBSETS) -> list[Sample]:
    """Split by group, the first capture group of ``pattern`` in each file name, so that no group
    (patient, recording) spans two subsets. Groups are shuffled (seeded) and dealt to test, then
    validation, until each holds its fraction of the images; the rest train."""
    regex = compile_group_pattern(pattern)
    groups: dict[str, list[Sample]] = {}
    unmatched = []
    for sample in samples:
        found = regex.search(sample.path.name)
        if found is None or found.group(1) is None:
            unmatched.append(sample.path.name)
        else:
            groups.setdefault(found.group(1), []).append(sample)
    if not groups:
        raise DataError(f"--group-pattern {pattern!r} matches no file name (e.g. {samples[0].path.name})")
    if unmatched:
        raise DataError(f"--group-pattern {pattern!r} does not match {len(unmatched)} file name(s), e.g. {unmatched[0]}")
    if len(groups) < len(required):
        raise DataError(f"--group-pattern {pattern!r} finds {len(groups)} group(s); "
                        f"{', '.join(required)} need {len(required)}")
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    targets = {"test": test_fraction * len(samples), "validation": val_fraction * len(samples)}
    filled = {"test": 0, "validation": 0, "train": 0}
    result = []
    for name in order:
        subset = next((s for s in ("test", "validation") if s in required and filled[s] < targets[s]), "train")
        filled[subset] += len(groups[name])
        result += [Sample(s.path, s.label, subset, name) for s in groups[name]]
    missing = [name for name in required if not any(s.subset == name for s in result)]
    if missing:
        raise DataError(f"--group-pattern {pattern!r}: too few groups to fill {', '.join(missing)}")
    return sort_split(result)


def compile_group_pattern(pattern: str) -> re.Pattern[str]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"--group-pattern {pattern!r} is not a valid regular expression ({exc})") from None
    if regex.groups < 1:
        raise DataError(f"--group-pattern {pattern!r} needs a capture group, e.g. '^(patient\\d+)_'")
    return regex


def split_class_names(path: Path) -> list[str]:
    """The class names of a split manifest, sorted as the scan sorts them."""
    with open(path, newline="", encoding="utf-8") as handle:
        names = {row.get("class") for row in csv.DictReader(handle)}
    if None in names or "" in names:
        raise DataError(f"{path}: a row has no class (short row)")
    return sorted(names)


def subset(samples: Iterable[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.subset == name]


def load_arrays(samples: Sequence[Sample], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode samples into memory: uint8 (N, S, S, 3) images and int32 labels."""
    images = np.stack([load_image(s.path, image_size) for s in samples]) if samples else np.zeros(
        (0, image_size, image_size, 3), np.uint8
    )
    return images, np.array([s.label for s in samples], dtype=np.int32)


def make_dataset(
    samples: Sequence[Sample], image_size: int, batch_size: int, shuffle: bool = False, seed: int = 42
):
    """tf.data pipeline: parallel Pillow decode -> in-memory cache -> shuffle -> batch -> prefetch.

    Images stay uint8 in the cache (4x smaller) and become float32 0..255 per batch; the
    model does its own normalisation.
    """
    import tensorflow as tf

    def decode(path: bytes) -> np.ndarray:
        return load_image(path.decode(), image_size)

    def load(path, label):
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape((image_size, image_size, 3))
        return image, label

    paths = [str(s.path) for s in samples]
    labels = np.array([s.label for s in samples], dtype=np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    options = tf.data.Options()  # several workers: each takes its share of the batches, not of the files
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
