"""trainer.config: validation and TOML config files."""

from __future__ import annotations

import pytest

from artery_edge.trainer.config import ConfigError, TrainConfig, load_config_file


def test_defaults_follow_the_recipe():
    config = TrainConfig()
    assert (config.image_size, config.batch_size, config.learning_rate, config.fine_tune_learning_rate) == (300, 32, 1e-4, 1e-5)
    assert (config.epochs, config.patience, config.alpha) == (10, 5, 1.0)


@pytest.mark.parametrize(
    "changes, message",
    [({"image_size": 31}, "must lie between 32 and 1024"), ({"weights": "/no/such/file.h5"}, "does not exist"),
     ({"val_fraction": 0.6, "test_fraction": 0.5}, "leave some training"), ({"epochs": 0, "fine_tune_epochs": 0}, "at least one stage")],
)
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_toml_file_top_level_or_train_table(tmp_path):
    (tmp_path / "a.toml").write_text("image-size = 64\nalpha = 0.35\n")
    (tmp_path / "b.toml").write_text("[train]\nepochs = 3\n")
    assert load_config_file(tmp_path / "a.toml") == {"image_size": 64, "alpha": 0.35}
    assert load_config_file(tmp_path / "b.toml") == {"epochs": 3}


def test_unknown_keys_and_missing_files_fail(tmp_path):
    (tmp_path / "c.toml").write_text("learning_rat = 0.1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load_config_file(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")


def test_distribution_options_come_from_toml_too(tmp_path):
    from artery_edge.trainer.distribute import check_request

    path = tmp_path / "scale.toml"
    path.write_text('[train]\nstrategy = "mirrored"\ndevices = "/gpu:0,/gpu:1"\nscale_learning_rate = true\n')
    config = TrainConfig(**load_config_file(path)).validate()
    assert (config.strategy, config.devices, config.scale_learning_rate) == ("mirrored", "/gpu:0,/gpu:1", True)
    assert check_request(config) is None
    path.write_text("strategy = 5\n")
    with pytest.raises(ConfigError, match="strategy must be str"):
        TrainConfig(**load_config_file(path)).validate()


@pytest.mark.parametrize("text, message", [
    ("", "needs TF_CONFIG"), ("{", "not valid JSON"), ('{"cluster": {}}', '"cluster" and "task"'),
    ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "does not name a member"),
])
def test_malformed_tf_config_is_one_line(text, message):
    from artery_edge.trainer.distribute import read_tf_config

    with pytest.raises(ConfigError, match=message):
        read_tf_config(text)


def test_tf_config_names_the_chief():
    from artery_edge.trainer.distribute import read_tf_config

    spec = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": %d}}'
    assert read_tf_config(spec % 0).is_chief and not read_tf_config(spec % 1).is_chief
    assert read_tf_config(spec % 1).workers == 2


@pytest.mark.parametrize("changes", [
    {"init_blend": 1.5, "init_from": "parent"}, {"teacher_weight": 2.0}, {"batch_size": 0}, {"label_smoothing": 0.7},
    {"warmup_epochs": -1.0}, {"seed": -1}, {"dropout": 1.0}, {"steps_per_execution": 0},
])
def test_a_number_out_of_its_range_exits_2_as_every_commands_range_errors(changes):
    """The CLI exits 2 for an OptionError (every command's range errors); train's were exit 1."""
    from artery_edge.edge.errors import OptionError

    with pytest.raises(OptionError):
        TrainConfig(**changes).validate()


def test_a_bad_name_or_file_stays_exit_1():
    from artery_edge.edge.errors import OptionError

    for changes in ({"run_name": "../x"}, {"weights": "/no/such/file.h5"}, {"schedule": "linear"}):
        with pytest.raises(ConfigError) as caught:
            TrainConfig(**changes).validate()
        assert not isinstance(caught.value, OptionError), changes


@pytest.mark.parametrize("text, ignored", [
    ("epochs = 3\n[train]\nalpha = 0.35\n", "epochs"),  # a key above the table
    ("[train]\nalpha = 0.35\n[convert]\nquantize = 'int8'\n", "convert"),  # another command's table
])
def test_keys_a_config_file_would_ignore_are_refused(tmp_path, text, ignored):
    """With a [train] table only it is read: anything beside it had no effect, without a word."""
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=f"{ignored} outside the \\[train\\] table would be ignored"):
        load_config_file(tmp_path / "c.toml")


def test_the_recipe_summary_names_files_without_this_machines_folders():
    from artery_edge.trainer.config import TrainConfig, recipe

    summary = recipe(TrainConfig(data_dirs=["d"], weights="/home/someone/w.h5", split_file="/srv/data/split.csv"))
    assert summary["weights"] == "w.h5" and summary["split_file"] == "split.csv"
    assert recipe(TrainConfig(data_dirs=["d"]))["weights"] == "imagenet"
