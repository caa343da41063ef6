"""`artery-edge synth`: the embedded default dataset, and the TensorFlow hint without the train extra."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

import artery_edge.cli as cli
from trainer.synthetic import render_patch

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
