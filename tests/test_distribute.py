"""Training that outgrows one machine, on CPU: MirroredStrategy over 2 logical CPUs, two local
workers under MultiWorkerMirroredStrategy, a worker whose partner never comes, and the bad
inputs. Resuming a run: tests/test_resume.py."""

from __future__ import annotations

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
from tests.run_helpers import TINY, cli_process, history_epochs  # noqa: E402

runner = CliRunner()


def test_mirrored_over_two_logical_cpus_trains_and_converts(synthetic_dir, tmp_path):
    script = f"""
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from artery_edge.trainer.config import TrainConfig
from artery_edge.trainer.training import train
from artery_edge.converters.options import ConvertOptions
from artery_edge.converters.tflite import convert
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


def test_a_mixed_precision_model_serves_in_float32(tmp_path):
    """Whatever policy trained it, the graph handed to the converter is float32."""
    import keras

    from artery_edge.converters.tflite import load_keras_model
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.model import build_model, is_float32

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


