"""Resuming a run: SIGKILLed in stage two and resumed without repeating epochs, and every way a
resume can be refused (options changed, damaged state, moved data, a run busy elsewhere)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from tests.conftest import tiny_weights  # noqa: E402
from tests.run_helpers import TINY, cli_process, history_epochs  # noqa: E402

runner = CliRunner()


def test_a_run_killed_in_stage_two_resumes_without_repeating_epochs(synthetic_dir, tmp_path):
    args = ["--weights", tiny_weights(), "--epochs", "2", "--fine-tune-epochs", "4", *TINY]  # patience 100: all 6 run
    expected = list(range(6))
    out = tmp_path / "killed"
    process = cli_process("train", str(synthetic_dir), "--output-dir", str(out), *args)
    deadline = time.monotonic() + 300
    history = None
    while time.monotonic() < deadline and process.poll() is None:
        history = next(out.glob("*/history.csv"), None) if out.exists() else None
        if history and len(history.read_text().splitlines()) >= 4:  # header + 2 stage-1 + 1 stage-2 epochs
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed in stage 2"
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_dir = history.parent
    assert not (run_dir / "run.json").exists() and 3 <= len(history_epochs(run_dir)) < len(expected)

    resumed = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    epochs = history_epochs(run_dir)
    print(f"resume: killed then resumed, {len(epochs)} epochs {epochs}")
    assert epochs == expected
    assert "resuming" in resumed.output and "stage 1: finished before the interruption" in resumed.output
    assert json.loads((run_dir / "run.json").read_text())["stage1_epochs"] == 2

    again = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert again.exit_code == 1 and "nothing to resume" in again.output


def test_resume_needs_an_interrupted_run(tmp_path):
    missing = runner.invoke(app, ["train", "--resume", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "is not a run directory" in missing.output
    both = runner.invoke(app, ["train", str(tmp_path), "--resume", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_a_backup_cut_by_a_kill_falls_back_or_restarts_the_stage(tmp_path):
    from artery_edge.trainer.resume import RunState

    state = RunState(tmp_path)
    folder = state.stage_dir(2)
    folder.mkdir(parents=True)
    import h5py

    with h5py.File(folder / "latest.weights.h5.bkp", "w") as handle:
        handle["w"] = np.arange(4.0)
    (folder / "training_metadata.json.bkp").write_text('{"epoch": 3, "batch": 0}')
    (folder / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n cut short")
    (folder / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert state.restored_epoch(2, default=2) == 3  # the previous backup, whole
    (folder / "latest.weights.h5").write_bytes(b"cut")
    (folder / "latest.weights.h5.bkp").write_bytes(b"cut too")
    assert state.restored_epoch(2, default=2) == 2 and not folder.exists()  # the stage starts again


def test_early_stopping_state_survives_a_restart(tmp_path):
    import keras

    from artery_edge.trainer.resume import ResumableEarlyStopping, RunState

    state = RunState(tmp_path)
    state.data["early_stopping_stage2"] = {"wait": 3, "best": 0.25, "best_epoch": 4}
    callback = ResumableEarlyStopping(state, 2, monitor="val_loss", patience=5, restore_best_weights=True)
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    callback.on_train_begin()
    assert (callback.wait, callback.best, callback.best_epoch) == (3, 0.25, 4)


def interrupted_run(tmp_path) -> Path:
    """A run folder as a kill leaves it before its first epoch: config, split, no run.json."""
    from PIL import Image

    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.runs import CONFIG_FILE, SPLIT_FILE, write_json
    from artery_edge.trainer.scan import scan_dataset
    from artery_edge.trainer.split_files import write_split
    from artery_edge.trainer.splits import stratified_split

    data = tmp_path / "data"
    for label in ("Healthy", "Unhealthy"):
        (data / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(data / label / f"{i}.png")
    run_dir = tmp_path / "runs" / "killed"
    run_dir.mkdir(parents=True)
    config = TrainConfig(data_dirs=[str(data)], output_dir=str(run_dir.parent), image_size=32, alpha=0.35,
                         weights="none", epochs=1, fine_tune_epochs=1, tensorboard=False)
    write_json(run_dir / CONFIG_FILE, config.to_dict())
    scanned = scan_dataset(data, validate=False)
    write_split(run_dir / SPLIT_FILE, stratified_split(scanned.samples), scanned.root, scanned.class_names)
    return run_dir


def resume_error(run_dir: Path, *options: str) -> str:
    result = runner.invoke(app, ["train", "--resume", str(run_dir), *options])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize("options", [["--epochs", "3"], ["--epochs", "10"], ["--seed", "1", "--no-flip"]])
def test_resume_refuses_options_instead_of_ignoring_them(tmp_path, options):
    message = resume_error(interrupted_run(tmp_path), *options)
    assert "continues with the options the run started with; leave out " + options[0] in message


def test_resume_of_damaged_state_moved_data_or_a_busy_run_is_one_error_line(tmp_path):
    from artery_edge.trainer.runs import locked

    run_dir = interrupted_run(tmp_path)
    with locked(run_dir):  # another process trains it
        assert "being trained by another process" in resume_error(run_dir)
    (run_dir / "backup").mkdir()
    (run_dir / "backup" / "state.json").write_text('{"stage1_done": 1, "checkp')  # cut by a kill
    assert "backup/state.json is damaged" in resume_error(run_dir)
    (run_dir / "backup" / "state.json").unlink()
    (tmp_path / "data").rename(tmp_path / "moved")
    assert "images are not where it trained" in resume_error(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "backup", "config.json", "split.csv"]


def test_best_keras_is_written_atomically_and_only_when_val_loss_improves(tmp_path, monkeypatch):
    """A save that fails half-way (a full disk, a kill) leaves the previous best.keras whole and
    no partial file beside it; a worse epoch writes nothing (issue 36: Keras' ModelCheckpoint wrote
    in place, and the cut file read as "made for another architecture")."""
    import keras

    from artery_edge.trainer.resume import BestModel

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = BestModel(tmp_path / "best.keras", best=2.0)  # a resumed run's best so far
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 2.5})
    assert not (tmp_path / "best.keras").exists()
    best.on_epoch_end(1, {"val_loss": 1.0})
    saved = (tmp_path / "best.keras").read_bytes()

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        best.on_epoch_end(2, {"val_loss": 0.5})
    assert (tmp_path / "best.keras").read_bytes() == saved and sorted(tmp_path.iterdir()) == [tmp_path / "best.keras"]
