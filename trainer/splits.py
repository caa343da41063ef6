"""Assigning samples to train / validation / test: stratified at random, by file name (a
published split) or by group (patient, recording). Seeded, so a split is reproducible.
TensorFlow-free; split files (CSV) are in :mod:`trainer.split_files`.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from artery_edge.trainer.samples import SUBSETS, DataError, Sample


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

