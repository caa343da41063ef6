"""Training that outgrows one machine, on CPU: MirroredStrategy over 2 logical CPUs, two local
workers under MultiWorkerMirroredStrategy, a SIGKILLed run resumed, and the bad inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from tests.conftest import REPO, tiny_weights  # noqa: E402

runner = CliRunner()
TINY = ["--image-size", "32", "--alpha", "0.35", "--batch-size", "8", "--no-tensorboard", "--patience", "100"]


def cli_process(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "artery_edge.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, **kwargs)


def history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_mirrored_over_two_logical_cpus_trains_and_converts(synthetic_dir, tmp_path):
    script = f"""
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer.config import TrainConfig
from trainer.training import train
from converters.options import ConvertOptions
from converters.tflite import convert
result = train(TrainConfig(data_dirs=[{str(synthetic_dir)!r}], output_dir={str(tmp_path)!r}, image_size=32, alpha=0.35,
                           weights={tiny_weights()!r}, batch_size=8, epochs=1, fine_tune_epochs=1, tensorboard=False,
                           sample_grid_size=4, strategy="mirrored", devices="/cpu:0,/cpu:1", scale_learning_rate=True),
               log=print, verbose=0)
convert(result.run_dir, ConvertOptions(["float32"]))
print("RUN", result.run_dir)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(done.stdout.split("RUN ")[-1].strip())
    run = json.loads((run_dir / "run.json").read_text())
    assert run["strategy"] == "MirroredStrategy" and run["replicas"] == 2 and run["global_batch_size"] == 16
    assert (run_dir / "model_float32.tflite").is_file() and history_epochs(run_dir) == [0, 1]
    assert "lr 0.0002" in done.stdout and "lr 2e-05" in done.stdout  # scaled by the 2 replicas
    assert not (run_dir / "backup").exists()  # a finished run's backups are removed


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_train_and_only_the_chief_writes(synthetic_dir, tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    out = tmp_path / "models"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(cli_process("train", str(synthetic_dir), "--output-dir", str(out), "--strategy", "multi-worker",
                                     "--weights", tiny_weights(), "--epochs", "1", "--fine-tune-epochs", "1", *TINY,
                                     "--json", env={"TF_CONFIG": tf_config}))
    results = [p.communicate(timeout=600) for p in processes]
    for p, (stdout, stderr) in zip(processes, results):
        assert p.returncode == 0, stderr[-3000:]
    runs = [d for d in out.iterdir()]
    assert len(runs) == 1, runs  # the chief's run alone; the other worker wrote to a temporary folder
    run = json.loads((runs[0] / "run.json").read_text())
    assert run["strategy"] == "MultiWorkerMirroredStrategy" and run["replicas"] == 2
    assert json.loads(results[0][0])["run_dir"] == str(runs[0])


def test_a_run_killed_in_stage_two_resumes_without_repeating_epochs(synthetic_dir, tmp_path):
    args = ["--weights", tiny_weights(), "--epochs", "2", "--fine-tune-epochs", "4", *TINY]
    whole = runner.invoke(app, ["train", str(synthetic_dir), "--output-dir", str(tmp_path / "whole"), *args])
    assert whole.exit_code == 0, whole.output
    expected = history_epochs(next((tmp_path / "whole").iterdir()))

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
    print(f"resume: uninterrupted {len(expected)} epochs, killed then resumed {len(epochs)} epochs {epochs}")
    assert epochs == expected == list(range(6))
    assert "resuming" in resumed.output and "stage 1: finished before the interruption" in resumed.output
    assert json.loads((run_dir / "run.json").read_text())["stage1_epochs"] == 2

    again = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert again.exit_code == 1 and "nothing to resume" in again.output


def test_a_mixed_precision_model_serves_in_float32(tmp_path):
    """Whatever policy trained it, the graph handed to the converter is float32."""
    import keras

    from converters.tflite import load_keras_model
    from trainer.config import TrainConfig
    from trainer.model import build_model, is_float32

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(2, TrainConfig(image_size=32, alpha=0.35, weights="none"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not is_float32(model) and model.get_layer("classifier").dtype_policy.name == "float32"
    model.save(tmp_path / "mixed.keras")
    serving = load_keras_model(tmp_path / "mixed.keras")
    assert is_float32(serving)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    reference = model(x, training=False)
    assert np.asarray(serving(x, training=False)).dtype == np.float32
    np.testing.assert_allclose(np.asarray(serving(x, training=False)), np.asarray(reference), atol=5e-3)


@pytest.mark.parametrize("args, env, message", [
    (["--strategy", "multi-worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid JSON"),
    (["--strategy", "multi-worker"], {"TF_CONFIG": '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}'},
     "does not name a member"),
    (["--strategy", "multi-worker"], {"TF_CONFIG": ""}, "needs TF_CONFIG"),
    (["--strategy", "ring"], {}, "unknown strategy"),
    (["--devices", "/gpu:0"], {}, "--devices applies to --strategy mirrored only"),
    (["--mixed-precision"], {}, "--mixed-precision needs a GPU"),
    (["--strategy", "mirrored", "--devices", "/gpu:0,/gpu:1"], {}, "--devices /gpu:0: no such device"),  # hung
    (["--strategy", "mirrored", "--devices", "/gpu:7"], {}, "--devices /gpu:7: no such device"),  # trained on CPU
    (["--strategy", "mirrored", "--devices", "/cpu:0,/cpu:0"], {}, "named twice"),
    (["--strategy", "mirrored", "--devices", "gpu zero"], {}, "is not a device name"),
])
def test_bad_distribution_options_are_one_error_line(synthetic_dir, tmp_path, monkeypatch, args, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["train", str(synthetic_dir), "--output-dir", str(tmp_path / "m"), "--weights",
                                 tiny_weights(), *TINY, *args])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_resume_needs_an_interrupted_run(tmp_path):
    missing = runner.invoke(app, ["train", "--resume", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "is not a run directory" in missing.output
    both = runner.invoke(app, ["train", str(tmp_path), "--resume", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_a_backup_cut_by_a_kill_falls_back_or_restarts_the_stage(tmp_path):
    from trainer.resume import RunState

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

    from trainer.resume import ResumableEarlyStopping, RunState

    state = RunState(tmp_path)
    state.data["early_stopping_stage2"] = {"wait": 3, "best": 0.25, "best_epoch": 4}
    callback = ResumableEarlyStopping(state, 2, monitor="val_loss", patience=5, restore_best_weights=True)
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    callback.on_train_begin()
    assert (callback.wait, callback.best, callback.best_epoch) == (3, 0.25, 4)


def start_lone_worker(synthetic_dir, tmp_path, timeout: str) -> subprocess.Popen:
    """The first of two workers, whose partner never comes (in its own process group, as a shell job)."""
    workers = [f"localhost:{port}" for port in free_ports(2)]
    tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}})
    return cli_process("train", str(synthetic_dir), "--output-dir", str(tmp_path / "m"), "--strategy", "multi-worker",
                       "--weights", "none", "--cluster-timeout", timeout, *TINY, env={"TF_CONFIG": tf_config},
                       start_new_session=True)


def test_a_worker_whose_partner_never_comes_times_out(synthetic_dir, tmp_path):
    process = start_lone_worker(synthetic_dir, tmp_path, "3")
    _, stderr = process.communicate(timeout=240)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == -signal.SIGKILL and errors == [
        "error: the other workers of TF_CONFIG did not connect within 3 s (--cluster-timeout)"], stderr[-2000:]
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_a_worker_waiting_for_its_partner_honours_sigterm_to_its_group(synthetic_dir, tmp_path):
    """SIGTERM to the job's process group, as systemd and a shell's Ctrl-C (SIGINT) deliver it."""
    process = start_lone_worker(synthetic_dir, tmp_path, "600")
    lines = []
    for line in process.stderr:  # wait until it is blocked in TensorFlow's cluster wait
        lines.append(line)
        if "waiting up to 600 s" in line:
            break
    time.sleep(10)  # the watchdog has started
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)  # it used to ignore SIGTERM and Ctrl-C and wait forever
    assert process.returncode == -signal.SIGKILL, "".join(lines)
    assert "error: interrupted while waiting for the other workers" in process.stderr.read()


def interrupted_run(tmp_path) -> Path:
    """A run folder as a kill leaves it before its first epoch: config, split, no run.json."""
    from PIL import Image

    from trainer.config import TrainConfig
    from trainer.runs import CONFIG_FILE, SPLIT_FILE, write_json
    from trainer.scan import scan_dataset
    from trainer.split_files import write_split
    from trainer.splits import stratified_split

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
    from trainer.runs import locked

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
