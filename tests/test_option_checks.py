"""Bad options and config values: refused in one `error:` line before anything runs. TF-free."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from artery_edge.cli import app
from tests.bad_inputs import cli, model, one_error_line  # noqa: F401 (model: a fixture)
from artery_edge.trainer.config import ConfigError, TrainConfig, load_config_file, merge_config

runner = CliRunner()


# TOML values of the wrong type are one-line config errors
@pytest.mark.parametrize("text", ['image_size = "abc"', "weights = 5", "train = 5", 'output_dir = ["a"]',
                                  'learning_rate = "fast"', "image_size = 48.5", "flip = 1"])
def test_toml_values_of_the_wrong_type_are_refused(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError):
        TrainConfig(**load_config_file(path)).validate()


# every value checked before anything is created
@pytest.mark.parametrize("changes", [
    {"alpha": float("inf")}, {"alpha": float("nan")}, {"zoom": -2.0}, {"brightness": 2.0}, {"seed": 2**32},
    {"image_size": 100000}, {"run_name": "../x"}, {"run_name": ".."}, {"learning_rate": 0.0},
])
def test_bad_values_are_refused_before_any_run_exists(changes):
    with pytest.raises(ConfigError):
        TrainConfig(**changes).validate()


def test_a_weights_file_that_is_not_hdf5_is_refused(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(ConfigError, match="not an HDF5 file"):
        TrainConfig(weights=str(garbage)).validate()


# options that used to crash natively are refused
@pytest.mark.parametrize("args, message", [
    (["--image", "x.png", "--threads", "100000"], "--threads must lie between"),
    (["--camera", "-1", "--no-display"], "--camera must be a camera index"),
    (["--camera", "99999999999999999999", "--no-display"], "--camera must be a camera index"),  # cv2.error
    (["--camera", "200", "--no-display"], "--camera must be a camera index from 0 to 99"),  # V4L2's camera 0
    (["--video", "clip.mp4", "--csv", "out.csv", "--no-display"], "--csv applies to --image only"),
])
def test_options_that_crashed_natively_are_refused(model, args, message):
    result = runner.invoke(app, ["infer", "--model", str(model), *args])
    assert result.exit_code == 2 and message in one_error_line(result)


def test_a_window_without_a_display_is_refused(model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    result = runner.invoke(app, ["infer", "--model", str(model), "--video", "clip.mp4"])
    assert result.exit_code == 2 and "no display found" in one_error_line(result)


def test_benchmark_threads_are_checked(model):
    result = runner.invoke(app, ["benchmark", "--model", str(model), "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in one_error_line(result)


# usage errors are one `error:` line too
def test_usage_errors_are_one_error_line():
    result = cli("infer", "--no-such-option")
    assert result.returncode == 2 and "No such option" in one_error_line(result)
    assert "╭" not in result.stderr


# an option that applies with another only: given alone (flag or TOML, any value), refused
@settings(max_examples=25, deadline=None)
@given(weight=st.floats(allow_nan=True, allow_infinity=True))
def test_a_teacher_weight_without_teachers_is_refused_whatever_its_value(weight):
    with pytest.raises(ConfigError, match="--teacher-weight applies with --teacher only"):
        merge_config({"data_dirs": ["d"], "teacher_weight": weight})


@settings(max_examples=25, deadline=None)
@given(weight=st.floats(allow_nan=True, allow_infinity=True))
def test_a_teacher_weight_with_teachers_is_checked_for_its_range(weight):
    config = merge_config({"data_dirs": ["d"], "teachers": ["t"], "teacher_weight": weight})
    if 0 < weight <= 1:
        config.validate()
    else:
        with pytest.raises(ConfigError, match="teacher-weight must lie in"):
            config.validate()


@pytest.mark.parametrize("text, message", [
    ("teacher_weight = 0.5\n", "--teacher-weight applies with --teacher only"),
    ('teacher = ["runs/a"]\n', "unknown option(s) teacher (the key is teachers, a list)"),
    ('teachers = "runs/a"\n', "teachers must be a list of folder names"),
])
def test_teacher_options_in_a_config_file(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        merge_config({"data_dirs": ["d"]}, path).validate()


@pytest.mark.parametrize("args, flags", [
    (["--teacher", "runs/a"], "--teacher "), (["--teacher-weight", "0.9"], "--teacher-weight "),
    (["--teacher", "runs/a", "--teacher-weight", "0.9"], "--teacher, --teacher-weight "),
])
def test_a_resumed_run_refuses_new_options_by_the_flags_typed(tmp_path, args, flags):
    """Refused before the options are merged (not "needs --teacher") and before TensorFlow loads."""
    result = runner.invoke(app, ["train", "--resume", str(tmp_path), *args])
    assert result.exit_code == 1 and f"leave out {flags}(a new run" in one_error_line(result)


@pytest.mark.parametrize("command", [["inspect"], ["benchmark", "--model"]])
def test_a_folder_given_as_a_model_is_named_as_a_folder(tmp_path, command):
    result = runner.invoke(app, [*command, str(tmp_path)])
    assert result.exit_code == 1 and "a folder, not a model file" in one_error_line(result)
