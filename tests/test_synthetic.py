"""`artery-edge synth`: the embedded default dataset, and the TensorFlow hint without the train extra."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import artery_edge.cli as cli
from artery_edge.trainer.synthetic import MAX_SIZE, MIN_SIZE, render_patch

runner = CliRunner()


def test_synth_writes_class_folders_and_never_overwrites(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(cli.app, ["synth", "--out", str(out), "--count", "3", "--size", "40"])
    assert result.exit_code == 0, result.output
    for name in ("Healthy", "Unhealthy"):
        files = sorted((out / name).glob("*.png"))
        assert len(files) == 3 and Image.open(files[0]).size == (40, 40)
    again = runner.invoke(cli.app, ["synth", "--out", str(out), "--count", "3"])
    assert again.exit_code != 0 and "not empty" in again.output


def test_stenosis_narrows_the_vessel():
    """Same random draws, with and without the narrowing: the vessel covers fewer pixels."""
    healthy = render_patch(np.random.default_rng(7), 64, stenosis=False)
    narrowed = render_patch(np.random.default_rng(7), 64, stenosis=True)
    assert not np.array_equal(healthy, narrowed)
    background = np.median(healthy)
    assert (np.abs(narrowed.astype(int) - background) > 30).sum() < (np.abs(healthy.astype(int) - background) > 30).sum()


def test_train_without_tensorflow_says_which_extra(monkeypatch, tmp_path):
    real_find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a))
    for args in (["train", str(tmp_path)], ["convert", str(tmp_path)], ["evaluate", "--run", str(tmp_path)]):
        result = runner.invoke(cli.app, args)
        assert result.exit_code != 0
        assert result.output.strip().splitlines()[-1] == 'error: TensorFlow is not installed: pip install "artery-edge[train]"'


@settings(max_examples=30, deadline=None)
@given(count=st.integers(-10**6, 3), size=st.integers(-10, 10**6), seed=st.integers(-10**6, 3))
def test_synth_options_out_of_range_are_option_errors_before_any_work(tmp_path_factory, count, size, seed):
    """An absurd --size would hold size^2 x 160 distances at once: refused, as a bad count or seed."""
    out = tmp_path_factory.mktemp("synth") / "data"
    ok = count >= 1 and MIN_SIZE <= size <= MAX_SIZE and seed >= 0
    if ok:
        return  # the valid ones are written by the other tests; rendering 512 px here would be slow
    result = runner.invoke(cli.app, ["synth", "--out", str(out), "--count", str(count), "--size", str(size),
                                     "--seed", str(seed)])
    errors = [line for line in result.output.splitlines() if line.startswith("error: --")]
    assert result.exit_code == 2 and len(errors) == 1 and not out.exists(), result.output


def test_an_interrupted_synth_leaves_no_partial_dataset(tmp_path, monkeypatch):
    import artery_edge.trainer.synthetic as synthetic

    real = synthetic.render_patch_with_box
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_patch_with_box", interrupted)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new", tmp_path / "empty"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            synthetic.synthesize_dataset(out, count=2, size=16)
        assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no temporary folder either


def test_synth_into_an_empty_folder_or_onto_a_file(tmp_path):
    (tmp_path / "empty").mkdir()
    assert runner.invoke(cli.app, ["synth", "--out", str(tmp_path / "empty"), "--count", "1", "--size", "16"]).exit_code == 0
    assert len(list((tmp_path / "empty").rglob("*.png"))) == 2
    (tmp_path / "plain").write_text("mine")
    result = runner.invoke(cli.app, ["synth", "--out", str(tmp_path / "plain"), "--count", "1", "--size", "16"])
    assert result.exit_code == 1 and "file exists" in result.output and (tmp_path / "plain").read_text() == "mine"


def test_a_folder_name_with_control_characters_cannot_forge_a_line(tmp_path):
    """synth's closing line escapes --out as every command escapes a path on the terminal."""
    out = tmp_path / "a\nerror: forged\x1b[2J"
    result = runner.invoke(cli.app, ["synth", "--out", str(out), "--count", "1", "--size", "16"])
    assert result.exit_code == 0 and out.is_dir(), result.output
    assert not any(line.startswith("error:") for line in result.output.splitlines()) and "\x1b" not in result.output
