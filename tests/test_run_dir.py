"""trainer.runs, the run directory's owner: numbered folders, the lock, atomic files, and every
Keras model or weights load as one error line. Tiny models only."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import keras  # noqa: E402

from artery_edge.edge.errors import ArteryEdgeError  # noqa: E402
from artery_edge.trainer import runs  # noqa: E402
from artery_edge.trainer.config import TrainConfig  # noqa: E402


def test_a_numbered_folder_is_never_reused(tmp_path):
    first = runs.numbered_folder(tmp_path / "run")
    (first / "x").write_text("kept")
    assert [runs.numbered_folder(tmp_path / "run").name for _ in range(2)] == ["run-2", "run-3"]
    assert (first / "x").read_text() == "kept"


def test_a_locked_run_refuses_a_second_trainer(tmp_path):
    with runs.locked(tmp_path):
        with pytest.raises(runs.RunBusyError, match="being trained by another process"):
            with runs.locked(tmp_path):
                pass
    with runs.locked(tmp_path):  # released: a later run may take it
        pass


def test_run_files_are_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / runs.METRICS_FILE
    runs.write_json(target, {"accuracy": 0.9})

    def full_disk(path, text, **kwargs):  # the disk fills up after a few bytes
        with open(path, "w") as handle:
            handle.write(text[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", full_disk)
    with pytest.raises(OSError):
        runs.write_json(target, {"accuracy": 0.1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"accuracy": 0.9}  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == [runs.METRICS_FILE]  # no temporary left


def small_model(*layers) -> keras.Model:
    return keras.Sequential([keras.Input((4,)), *layers, keras.layers.Dense(2)])


@pytest.mark.parametrize("damage, reason", [
    (lambda path: path.write_bytes(path.read_bytes()[:200]), "not a whole .keras archive"),
    (lambda path: path.write_text("hello"), "not a whole .keras archive"),
    (lambda path: small_model(keras.layers.Lambda(lambda x: x * 2)).save(path), "Lambda layer"),
    (lambda path: path.unlink(), "no Keras model"),
])
def test_every_bad_keras_model_is_one_error_line(tmp_path, damage, reason):
    path = tmp_path / "model.keras"
    small_model().save(path)
    damage(path)
    with pytest.raises(runs.ModelLoadError, match=reason) as caught:
        runs.load_keras_model(path)
    assert "\n" not in str(caught.value)


def test_weights_of_another_architecture_are_one_error_line(tmp_path):
    from artery_edge.trainer.model import build_base

    small_model().save(tmp_path / "other.h5")
    with pytest.raises(ArteryEdgeError, match="made for another architecture"):
        build_base(TrainConfig(weights=str(tmp_path / "other.h5"), alpha=0.35, image_size=32))


def test_a_typed_config_reads_old_runs(tmp_path):
    old = {**TrainConfig(alpha=0.35).to_dict(), "jit_compile": False, "data_dir": str(tmp_path)}
    del old["data_dirs"]
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps(old))
    config = runs.read_config(tmp_path)
    assert config.data_dirs == [str(tmp_path)] and config.alpha == 0.35
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps({**old, "alpha": "wide"}))
    with pytest.raises(ValueError, match="alpha must be float"):
        runs.read_config(tmp_path)


def test_a_resumed_stage_one_does_not_leak_its_epoch_into_stage_two(tmp_path):
    """Keras' BackupAndRestore sets the model's start epoch and never clears it: a run killed in
    stage 1 then resumed ran stage 2 from the stage-1 epoch (and repeated epochs in history.csv)."""
    import tensorflow as tf

    from artery_edge.trainer.training import fit_stage

    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices((rng.normal(size=(16, 4)).astype("float32"), np.arange(16) % 2)).batch(8)

    def compiled() -> keras.Model:
        model = small_model()
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    backup = str(tmp_path / "stage1")
    fit_stage(compiled(), data, None, 0, 1, [keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)], 0)
    resumed = compiled()  # a new process after a kill in stage 1 (of 2 epochs), after its first epoch
    assert fit_stage(resumed, data, None, 0, 2, [keras.callbacks.BackupAndRestore(backup)], 0) == 1
    assert fit_stage(resumed, data, None, 2, 4, [], 0) == 2  # stage 2: epochs 2 and 3, no more
