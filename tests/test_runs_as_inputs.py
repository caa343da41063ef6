"""Finished runs given as inputs to a new run (issue 22, third probe round): teachers
(`--teacher`), a parent (`--init-from` / `adapt --from`) and its replay images. A teacher is
its model, not its path; a run's model.keras must be the model its run.json describes;
`--replay N` is N per class or refused. Fake runs here: no training, no TensorFlow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from artery_edge.trainer.config import ConfigError, TrainConfig
from artery_edge.trainer.runs import load_run
from artery_edge.trainer.samples import DataError, Sample
from artery_edge.trainer.split_files import write_split

CLASSES = ["Healthy", "Unhealthy"]


def fake_run(folder: Path, model_bytes: bytes = b"model", per_class: int = 3) -> Path:
    """A finished run's files (model.keras: ``model_bytes``), its training split ``per_class``
    empty image files of each class."""
    data = folder / "data"
    samples = []
    for label, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(per_class):
            (data / name / f"{i}.png").write_bytes(b"png")
            samples.append(Sample(data / name / f"{i}.png", label, "train"))
    run = folder / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(model_bytes)
    (run / "run.json").write_text(json.dumps({"class_names": CLASSES, "image_size": 32}))
    (run / "config.json").write_text(json.dumps(TrainConfig(data_dirs=[str(data)]).to_dict()))
    write_split(run / "split.csv", samples, data, CLASSES)
    return run


@pytest.fixture
def teacher(tmp_path) -> Path:
    return fake_run(tmp_path / "t")


@pytest.mark.parametrize("spelling", ["same", "slash", "dot", "dotdot", "link", "copy"])
def test_a_teacher_given_twice_under_any_spelling_is_refused(teacher, tmp_path, spelling):
    """The same folder (trailing slash, ./, x/../x, a symlink) or a copy of it (the same model.keras)."""
    from artery_edge.trainer.distillation import check_distinct

    other = {"same": teacher, "slash": Path(f"{teacher}/"), "dot": teacher / ".",
             "dotdot": teacher / ".." / teacher.name, "link": tmp_path / "link", "copy": tmp_path / "copy"}[spelling]
    if spelling == "link":
        other.symlink_to(teacher)
    if spelling == "copy":
        shutil.copytree(teacher, other)
    with pytest.raises(ConfigError, match="given twice"):
        check_distinct([load_run(teacher), load_run(other)])


def test_two_teachers_with_different_models_are_kept(tmp_path):
    from artery_edge.trainer.distillation import check_distinct

    check_distinct([load_run(fake_run(tmp_path / "a", b"one")), load_run(fake_run(tmp_path / "b", b"two"))])


def test_a_file_given_as_a_run_is_named_as_a_file(teacher):
    with pytest.raises(DataError, match="is not a run directory but a file"):
        load_run(teacher / "model.keras")


@pytest.mark.parametrize("per_class, ok", [(0, True), (3, True), (4, False), (10**6, False)])
def test_replay_takes_exactly_n_per_class_or_refuses(teacher, per_class, ok):
    """Fewer replay images than asked, silently, would be another recipe than the one recorded."""
    from artery_edge.trainer.parent import Parent, replay_samples

    parent = Parent(load_run(teacher), "sha", model=None)
    if ok:
        chosen = replay_samples(parent, per_class, seed=1)
        assert [sum(s.label == c for s in chosen) for c in (0, 1)] == [per_class, per_class]
    else:
        with pytest.raises(DataError, match=f"--replay {per_class}: .* has only 3 image"):
            replay_samples(parent, per_class, seed=1)


def test_a_model_keras_that_is_not_its_runs_is_refused_by_every_reader(tmp_path):
    """A model.keras copied in from elsewhere (48 px, 3 outputs, where run.json says 32 px and
    2 classes): one line before any work, whoever reads the run (it failed mid-work before)."""
    pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")
    from artery_edge.trainer import model as trainer_model
    from artery_edge.edge.provenance import ForeignModelError
    from artery_edge.trainer.distillation import load_teachers
    from artery_edge.trainer.parent import load_parent

    run = fake_run(tmp_path)
    (run / "model.keras").unlink()
    other = TrainConfig(data_dirs=["x"], image_size=48, alpha=0.35, weights="none")
    trainer_model.build_model(3, other).save(run / "model.keras")
    expected = "does not belong to the run .*: input 48 px where the run has 32 px; 3 outputs for the run's 2 classes"
    with pytest.raises(ForeignModelError, match=expected):
        load_run(run).keras_model()
    with pytest.raises(ConfigError, match="--teacher .*" + expected):
        load_teachers([str(run)])
    with pytest.raises(ConfigError, match="parent run .*" + expected):
        load_parent(run)


def test_a_run_whose_model_keras_was_replaced_is_refused_as_parent_teacher_or_evaluated(tmp_path):
    """run.json records its model's SHA-256: another run's model.keras (same architecture, so the
    size and output checks pass) copied in is refused before it loads, by every reader, and a
    run that records a malformed digest is damaged."""
    from artery_edge.edge.metadata import sha256_of_file
    from artery_edge.edge.provenance import ForeignModelError
    from artery_edge.trainer.distillation import load_teachers
    from artery_edge.trainer.parent import load_parent

    run = fake_run(tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "model_sha256": sha256_of_file(run / "model.keras")}))
    (run / "model.keras").write_bytes(b"another run's model")
    expected = "model.keras is not the model the run .* finished with: its sha256 is .*, run.json records"
    with pytest.raises(ForeignModelError, match=expected):
        load_run(run).keras_model()
    with pytest.raises(ConfigError, match="--teacher .*" + expected):
        load_teachers([str(run)])
    with pytest.raises(ConfigError, match="parent run .*" + expected):
        load_parent(run)
    (run / "run.json").write_text(json.dumps({**record, "model_sha256": "not a digest"}))
    with pytest.raises(DataError, match="damaged run files .*model_sha256"):
        load_run(run)
